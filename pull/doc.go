// Package pull serves walrelay's Kafka topics over HTTP: a REST pull API
// for consumers that cannot speak the Kafka protocol.
//
// # Serving
//
// [NewHandler] (or [New], which returns the concrete *[Handler]) validates
// a [Config] and returns an [http.Handler]; mount it on any server and
// Close it on shutdown:
//
//	h, err := pull.New(pull.Config{
//		Brokers:  []string{"broker-1:9092"},
//		Username: "reader", Password: os.Getenv("PULL_PASSWORD"),
//	})
//	if err != nil { … }
//	defer h.Close()
//	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: h}
//
// Every request must carry HTTP basic authentication with Username and
// Password (compared in constant time); otherwise the answer is 401 with a
// WWW-Authenticate header. An empty Username or Password is a configuration
// error unless [Config.InsecureNoAuth] is set. Serve over TLS in production:
// basic authentication sends the password in every request.
//
// # Records
//
// Both kinds of endpoint answer with a JSON array of [Record]:
//
//	[{"topic":"sequin.public.users","partition":0,"offset":41,
//	  "timestamp":"2024-10-28T21:37:01.127Z","key":"42",
//	  "value":"{\"record\":…}","headers":{"idempotency-key":"…","action":"insert","table":"public.users"}}]
//
// key and value are strings (key is null for a record without one);
// headers is an object (a repeated header name keeps its last value). With
// topics written by package sink/kafka, value is a message in the JSON
// shape Sequin delivers.
//
// # Reading by offset: /fetch
//
//	GET  /fetch?topic=T&partition=P&offset=O&limit=N
//	POST /fetch   {"topic":"T","partition":P,"offset":O,"limit":N}
//
// returns up to N records of partition P (default 0) from offset O
// (default 0), in offset order. The caller keeps its own position: the next
// page starts at the last returned offset + 1. An empty array means the
// end of the partition for now. limit defaults to [DefaultLimit] and is
// lowered to [Config.MaxLimit]. An offset past the end is 416; an unknown
// topic or partition is 404.
//
// # Reading with a consumer group: /consume
//
//	GET  /consume/{group}/{instance}/{topic}?timeout=MS&limit=N
//	GET  /consume/{group}/{instance}?topic=T1&topic=T2&timeout=MS
//	POST /consume/{group}/{instance}   {"topics":["T1","T2"],"timeout":MS,"limit":N}
//	DELETE /consume/{group}/{instance}
//
// The first call for a group/instance pair creates a consumer that joins
// Kafka consumer group {group} and reads the named topics (from the
// earliest offset when the group has committed nothing). Later calls may
// omit the topics; naming different ones is 409. Instances of one group
// share the topics' partitions as any Kafka group members do, so several
// clients can split the work, each with its own instance name.
//
// A call waits up to timeout milliseconds (default [DefaultConsumeTimeout],
// lowered to [Config.MaxTimeout]) for a first record, then returns at once
// with what is ready, up to limit records. Progress is committed to the
// group: each call acknowledges the records the previous call of the same
// instance returned, and the group's committed offsets move past them, so
// the instance — or any member of the group after a rebalance — continues
// where the last call left off. DELETE commits the last response and
// closes the instance.
//
// Delivery is at-least-once. Records a call returned are only committed by
// the next call (or DELETE); if the client never comes back, they are
// delivered again. A client that disconnects while a call waits loses
// nothing: records fetched for it are kept for its next call.
//
// An instance without calls for [Config.IdleTimeout] is closed and leaves
// its group (its last response is not committed). [Handler.Close] closes
// all instances and stops the background reaper; later requests get 503.
//
// # Errors
//
// Every error response is JSON, {"error": "…"}: 400 for bad parameters
// (named in the message), 401 without valid credentials, 404 for unknown
// topics, partitions or instances, 405 for a wrong method, 409 for a topic
// change on an instance, 416 for an offset out of range, 502 when Kafka
// fails, 503 after Close.
package pull
