// Package webhook delivers messages to an HTTP endpoint by POST, with
// retries, backoff and optional signatures.
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
// Each message is one request whose body is the encoder's output — by
// default Sequin's message JSON ([sink.JSON]); [sink.RecordOnly],
// [sink.Event] or your own [sink.Encoder] change it. With Config.Batch a
// Write sends {"data":[…]} requests of up to Config.MaxBatchSize messages.
// Requests go out one at a time, in order.
//
// # Headers and idempotency
//
// Every request carries Content-Type, the Config.Header extras, and
// Idempotency-Key: the message's idempotency key, or for a batch
// "batch_" and a hash of its messages' keys (the same batch always gets the
// same key; the per-message keys are inside the body). Deliveries are
// at-least-once, so receivers should deduplicate on these keys.
//
// # Retries
//
// A 2xx answer, whatever its body, is success. Network errors, timeouts
// (Config.Timeout per attempt, 30 s by default), closed connections, 408,
// 429 and 5xx are retried after a backoff from Config.NewBackOff, or after
// the Retry-After the endpoint sent (seconds or an HTTP date, capped by
// Config.MaxRetryAfter). A retried request is byte-identical to the first,
// signature included. After Config.MaxAttempts attempts (10 by default) or
// Config.MaxElapsed, Write returns the last failure; it is not permanent, so
// cdc.Run retries the batch later and nothing is dropped. Other 4xx answers
// and untrusted TLS certificates are [sink.Permanent] errors ([*StatusError]
// names the status and the start of the response body): retrying cannot fix
// them. Cancelling Write's context stops it at once.
//
// # Signatures
//
// With Config.Secret every request is signed as the Standard Webhooks
// specification describes: the Webhook-Id header holds the Idempotency-Key,
// Webhook-Timestamp the unix seconds of the first attempt, and
// Webhook-Signature "v1," and the base64 HMAC-SHA256 of
// "<id>.<timestamp>.<body>". Receivers check it with [Verify]:
//
//	func handle(w http.ResponseWriter, r *http.Request) {
//		body, err := io.ReadAll(r.Body)
//		if err != nil || webhook.Verify(secret, r.Header, body) != nil {
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
