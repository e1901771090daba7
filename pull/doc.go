// Package pull serves walrelay's Kafka topics over HTTP: a REST pull API
// for consumers that cannot speak the Kafka protocol. It speaks the
// consumer side of Upstash's Kafka REST API, so Upstash's own client
// (@upstash/kafka) and code written for it work against walrelay; the
// table at the end lists every Upstash endpoint, header and field with
// its status here.
//
// # Serving
//
// [NewHandler] validates a [Config] and returns the [Handler], an
// [http.Handler]; mount it on a server whose timeouts are bounded, and
// Close it on shutdown:
//
//	h, err := pull.NewHandler(pull.Config{
//		Brokers:  []string{"broker-1:9092"},
//		Username: "reader", Password: os.Getenv("PULL_PASSWORD"),
//	})
//	if err != nil { … }
//	defer h.Close()
//	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: h,
//		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
//		WriteTimeout: pull.DefaultMaxTimeout + 30*time.Second, // calls wait up to MaxTimeout
//		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
//
// Every request must carry HTTP basic authentication with Username and
// Password (compared in constant time); otherwise the answer is 401 with a
// WWW-Authenticate header. An empty Username or Password is a configuration
// error unless [Config.InsecureNoAuth] is set. Serve over TLS in production:
// basic authentication sends the password in every request. A Config
// prints with its passwords masked.
//
// # What is served
//
// Only topics on the allow-list [Config.Topics] — by default [DefaultTopicPattern],
// the "sequin.*" topics package sink/kafka writes — are served; any other
// is answered 403 and left out of /topics. Consumer-group names are
// namespaced: a client's group "g" is Kafka group [Config.GroupPrefix]+"g"
// (by default "walrelay.pull.g"), so API clients never commit to the groups
// of other Kafka applications. Producing is walrelay's job: /produce and
// /webhook are answered 403.
//
// # Records
//
// /fetch and /consume answer with a JSON array of [Record]:
//
//	[{"topic":"sequin.public.users","partition":0,"offset":41,
//	  "timestamp":1730151421127,"key":"42","value":"{\"record\":…}",
//	  "headers":[{"key":"idempotency-key","value":"…"},{"key":"action","value":"insert"}]}]
//
// timestamp is in milliseconds since the Unix epoch; key is "" for a
// record without one; headers keep their order and repeated keys ([] when
// none). With topics written by package sink/kafka, value is a message in
// the JSON shape Sequin delivers.
//
// # Reading by offset: /fetch
//
//	GET  /fetch?topic=T&partition=P&offset=O&timeout=MS&limit=N
//	POST /fetch   {"topic":"T","partition":P,"offset":O,"timeout":MS}
//	POST /fetch   {"topicPartitionOffsets":[{"topic":"T","partition":P,"offset":O},…],"timeout":MS}
//
// returns the records of partition P (default 0) from offset O (default
// 0), in offset order; topicPartitionOffsets names several partitions (up
// to 100, with or beside topic), answered one after the other in one
// array. When there is nothing to return yet the call waits up to timeout
// milliseconds (default [DefaultWait], lowered to [Config.MaxTimeout]) for
// a record. The caller keeps its own position: the next page starts at the
// last returned offset + 1. An offset past the end is 416; an unknown
// topic or partition is 404.
//
// # Reading with a consumer group: /consume
//
//	GET|POST /consume/{group}/{instance}/{topic}?timeout=MS
//	POST     /consume/{group}/{instance}   {"topic":"T"} or {"topics":["T1","T2"]}, "timeout":MS
//
// The first call for a group/instance pair creates a consumer instance
// that joins Kafka consumer group {group} for the named topics (an unknown
// topic is 404). Instances of one group share the topics' partitions as
// any Kafka group members do, so several clients can split the work, each
// with its own instance name; /consumers shows who holds what. A later
// call naming other topics moves the instance to them, as a Kafka
// consumer's subscribe does (committing first when auto-commit is on). A
// new instance may return [] while its group forms.
//
// The headers of the call that creates an instance set its behaviour:
//
//   - Kafka-Enable-Auto-Commit (true by default): commit what the instance
//     returned, every Kafka-Auto-Commit-Interval milliseconds (default
//     [DefaultAutoCommitInterval]; 0 commits on every call) — on the next
//     call or, between calls, in the background — and when the instance is
//     deleted, reaped for idleness, or closed with the handler.
//   - Kafka-Auto-Offset-Reset: where a group without a committed offset
//     starts: latest (the default: records written from now on), earliest,
//     or none (refuse the call with 409 until the group has committed
//     offsets for all the topics' partitions, e.g. through /commit).
//   - Kafka-Session-Timeout-Ms: the instance's group session timeout
//     (default [Config.SessionTimeout]).
//
// A call waits up to timeout milliseconds (default [DefaultWait]) for a
// first record, then returns at once with what is ready. An instance
// without calls for [Config.IdleTimeout] is closed and leaves its group.
// A client that disconnects while a call waits loses nothing: records
// fetched for it are kept for its next call.
//
// # Committing
//
//	GET|POST /commit/{group}/{instance}       (no body: what the instance returned)
//	GET|POST /commit/{group}/{instance}       {"topic":"T","partition":P,"offset":O} or an array of them
//	GET|POST /committed/{group}/{instance}    {"topic":"T","partition":P} or an array of them
//	GET|POST /delete-consumer/{group}/{instance}
//
// Offsets are Kafka's: the committed offset of a partition is the next
// record to read, so after reading offset 41 the commit is 42, and
// committed returns exactly the offset a commit gave (-1 for none). A
// commit naming offsets for an instance that no longer exists is made
// outside the group's generation, which Kafka accepts while the group has
// no members (otherwise 409). commit and delete-consumer answer
// {"result":"Success","status":200}; delete-consumer commits first when
// auto-commit is on. DELETE /consume/{group}/{instance} is the same as
// delete-consumer. Both commit kinds take ?timeout=MS (default
// [DefaultCommitTimeout]).
//
// # Delivery guarantees
//
// Delivery is at-least-once: nothing is committed before it was returned
// to a client, so what a client never received is never skipped —
// records an instance prefetched but did not return are read again by
// whichever instance comes next. With auto-commit on, what was returned
// is committed even if the client crashed before processing it (Kafka's
// auto-commit trade-off); a client that must not lose a record to its own
// crash sets Kafka-Enable-Auto-Commit: false and calls /commit after
// processing. After a rebalance an instance commits only the partitions it
// still holds, so it never moves another member's offsets backwards.
//
// # Metadata
//
//	GET      /topics                          {"T": partitions, …} for the served topics
//	GET      /consumers                       this handler's instances and their partitions
//	GET|POST /offsets/{earliest|latest|MS}    {"topic":"T","partition":P} or an array of them
//
// /offsets returns [{"topic","partition","offset"}]: the first offset, the
// end offset, or the first offset whose record's timestamp is at or after
// MS milliseconds since the epoch (-1 when there is none).
//
// # Limits
//
// A response holds at most limit records (a walrelay extension: default
// [DefaultLimit], at most [Config.MaxLimit]) and at most
// [Config.MaxResponseBytes] of keys, values and headers — but always at
// least one record, however large. JSON escaping can make the body larger
// than that count. At most [Config.MaxInstances] consumer instances live at
// once (429 beyond), each reading at most [Config.Prefetch] records ahead,
// with Kafka fetches of [Config.MaxFetchBytes]. Memory is therefore bounded
// by about MaxInstances × (Prefetch × the largest record + MaxFetchBytes)
// for the instances, plus twice MaxResponseBytes for each response being
// written (records and their JSON); with the defaults and 1 MiB records,
// about 1 GiB for 64 busy instances — lower Prefetch or MaxInstances when
// records are large. A timeout that does not fit
// a duration, a partition beyond 2³¹-1, a negative number or a body over
// 1 MiB is 400 (413 for the body).
//
// # Errors
//
// Every error response is JSON, {"error":"…","status":N}: 400 for bad
// parameters (named in the message), 401 without valid credentials, 403
// for a topic outside the allow-list and for producing, 404 for unknown
// topics, partitions or instances, 405 for a wrong method, 409 for an
// offset reset "none" without offsets or a commit racing live members, 416
// for an offset out of range, 429 over MaxInstances, 502 when Kafka fails,
// 503 after Close, 504 when Kafka does not answer in time. The Upstash
// client retries every non-2xx answer five times (about 15.5 s in all)
// before it throws; its UpstashError carries error and status.
//
// # Upstash's Kafka REST API, item by item
//
// Status: "yes" is the same as Upstash; "differs" says how and why; "no"
// is out of scope.
//
//	Upstash                                   walrelay
//	GET|POST /fetch                           yes
//	  FetchRequest.topic, partition, offset   yes (partition and offset default to 0)
//	  FetchRequest.topicPartitionOffsets      yes; up to 100 partitions, answered in one array
//	                                          (Upstash answers one topic at a time)
//	  FetchRequest.timeout (default 1000)     yes; lowered to Config.MaxTimeout
//	GET /consume/{g}/{i}/{topic}?timeout=     yes (POST too)
//	GET|POST /consume/{g}/{i} ConsumeRequest  yes: topic, topics, timeout
//	  Kafka-Enable-Auto-Commit                yes (default true)
//	  Kafka-Auto-Commit-Interval              yes (default 5000)
//	  Kafka-Auto-Offset-Reset                 yes (default latest); none is checked when the
//	                                          instance is created, over all the topics' partitions,
//	                                          and answered 409 (Kafka's consumer throws on poll)
//	  Kafka-Session-Timeout-Ms                yes (1 ms to 1 h)
//	  a new topic list for an instance        yes: the instance resubscribes
//	  instances closed after idle time        yes: Config.IdleTimeout (committing with auto-commit)
//	GET|POST /commit/{g}/{i}[?timeout=]       yes: with or without offsets
//	GET|POST /committed/{g}/{i}[?timeout=]    yes; -1 for a partition without a committed offset;
//	                                          the instance need not exist
//	GET|POST /delete-consumer/{g}/{i}         yes, {"result":"Success","status":200}
//	GET /topics                               yes, only the allow-listed topics
//	GET /consumers                            yes, the instances of this handler (of this process)
//	GET|POST /offsets/{ts|earliest|latest}    yes; ts in epoch milliseconds; -1 when no record is
//	                                          that recent
//	Message.topic, partition, offset          yes
//	Message.timestamp (epoch ms)              yes
//	Message.key ("" when none)                yes
//	Message.value                             yes (bytes that are not UTF-8 are replaced by U+FFFD,
//	                                          as in any JSON string)
//	Message.headers [{key,value}]             yes, in order, repeated keys kept
//	errors {"error","status"}                 yes
//	basic auth (UPSTASH_KAFKA_REST_USERNAME/  yes: Config.Username and Password, one user
//	  _PASSWORD)
//	limit (records per response)              differs: a walrelay extension (Upstash has none);
//	                                          responses are also bounded by MaxResponseBytes
//	group names                               differs: prefixed with Config.GroupPrefix in Kafka
//	                                          (the API shows them unprefixed)
//	topics                                    differs: only Config.Topics are served (403 otherwise)
//	POST /produce, /produce/{topic}/{msg}     no: 403 — walrelay's topics are written by walrelay
//	POST /webhook?topic=                      no: 403, for the same reason
//	topic and cluster administration          no (Upstash does it in its console)
//	  (create, delete, configure)
//
// Consumer instances live in one process: behind a load balancer, route a
// group/instance pair to the same process (or run one), as Upstash's
// instance ids assume.
package pull
