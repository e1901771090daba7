// Package webhook delivers messages to an HTTP endpoint by POST, with
// retries, backoff and Standard Webhooks signatures.
//
// # Sending
//
// Create a [Sink] with [New] and hand it to cdc.Run (or call Write
// yourself):
//
//	s, err := webhook.New(webhook.Config{
//		URL:    "https://example.com/hooks/orders",
//		Secret: os.Getenv("WEBHOOK_SECRET"), // "whsec_…"; optional
//	})
//
// As Sequin's webhook sink does, each request's body is {"data":[…]}
// holding the encoder's JSON of each message — by default Sequin's message
// shape ([sink.JSON]); [sink.RecordOnly], [sink.Event] or your own
// [sink.Encoder] change it. A request carries one message unless
// Config.MaxBatchSize (or Config.Batch, for 100) allows more.
// Config.Single sends each message alone as the body, which then need not
// be JSON. Requests go out one at a time, in order.
//
// # The delivery contract
//
// Write returns nil only once the endpoint answered 2xx (whatever the body)
// to every request, at the configured URL. cdc.Run acknowledges messages to
// Postgres only then, so the replication slot never moves past a change
// the endpoint has not accepted.
//
// What is retried: everything else. Network errors, timeouts
// (Config.Timeout per attempt, 30 s by default), closed connections, TLS
// errors, and every non-2xx status — 3xx, 4xx and 5xx alike: a receiver
// answering 404 or 401 during its own deploy does not halt the pipeline.
// Redirects are never followed, with the default client or one given in
// Config.Client (the sink uses a copy of it; yours is not changed): a 3xx
// is a failed attempt, retried at the configured URL, never a delivery —
// following it would turn a POST into a body-less GET (301, 302, 303) or
// send the signed body to a URL nobody configured (307, 308).
//
// For how long: by default until the endpoint accepts or Write's context
// ends, waiting between attempts as [DefaultBackoff] says (from 250 ms,
// growing by half each time, up to 3 minutes, with jitter; Config.Backoff
// replaces it), or as long as a Retry-After header asks (seconds or an
// HTTP date, capped by Config.MaxRetryAfter, one minute by default).
// Nothing is ever dropped.
//
// What stops it: Write's context (cdc.Run then returns the context's error
// joined with the sink's last failure); Config.MaxAttempts or
// Config.MaxElapsed, when set, after which Write returns the last failure,
// not permanent, so cdc.Run retries the batch later; a status listed in
// Config.StopOn, which makes Write return a [sink.Permanent]
// [*StatusError], so cdc.Run stops without acknowledging; and a message the
// encoder cannot encode (permanent as well).
//
// While it retries, the failure is visible: each failed attempt is logged
// at Warn on Config.Logger (the endpoint as scheme://host, the request id,
// the attempt, the wait, the error) and counted in [Sink.Stats] (Failures,
// Retries, LastError, LastErrorAt).
//
// What the receiver sees on each attempt: a POST to the configured URL
// with the same body, the same Idempotency-Key and, when signed, the same
// Webhook-Id — the message's idempotency key, or for a batch of several
// "batch_" and a hash of their keys — but a Webhook-Timestamp of the
// attempt's own and a Webhook-Signature over it. Each attempt is signed
// afresh, so a retry chain longer than the receivers' timestamp tolerance
// (five minutes in the Standard Webhooks libraries) is still accepted.
// Deliveries are at-least-once: receivers deduplicate on Webhook-Id, or on
// each message's idempotency key inside the body.
//
// # Headers
//
// Every request carries Content-Type, User-Agent, Idempotency-Key, the
// signature headers when signed, and Config.Header. Config.Header cannot
// name the sink's own headers in any case, nor give a name twice in
// different cases, nor hold a control character (CR, LF) in a value: New
// rejects those. Its values, the URL's path and query, and the secrets are
// never written to errors or logs (a response body echoing them is
// masked), and a [Config] prints and logs with them masked.
//
// # Signatures
//
// With Config.Secret every request is signed as the Standard Webhooks
// specification describes: Webhook-Signature holds "v1," and the base64
// HMAC-SHA256 of "<id>.<timestamp>.<body>". The secret is the base64 of the
// key, with or without the "whsec_" prefix, exactly as the official
// libraries read it; New rejects with [ErrSecret] what they would reject or
// read as another key (URL-safe base64, whitespace, a dangling character).
// A raw key is given as "whsec_" + base64(key).
//
// To rotate the key, sign with both for a while: put the new secret in
// Config.ExtraSecrets (each secret adds one signature, space-separated),
// move the receivers to the new secret, then make it the Secret and drop
// the old one.
//
// Receivers check requests with [Verify], or a [Verifier] for several
// secrets or another tolerance. Both refuse a Webhook-Timestamp more than
// the tolerance ([DefaultTolerance], five minutes) away from the receiver's
// clock, so a captured request cannot be replayed later:
//
//	v, err := webhook.NewVerifier(webhook.VerifierConfig{Secrets: []string{secret}})
//	…
//	func handle(w http.ResponseWriter, r *http.Request) {
//		body, err := io.ReadAll(r.Body)
//		if err != nil || v.Verify(r.Header, body) != nil {
//			http.Error(w, "bad signature", http.StatusUnauthorized)
//			return
//		}
//		// … process, deduplicating on the Webhook-Id header
//	}
//
// # TLS
//
// Set Config.TLSConfig to trust a private certificate authority, or pass a
// ready Config.Client.
package webhook
