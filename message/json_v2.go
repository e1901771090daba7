//go:build goexperiment.jsonv2

package message

import "encoding/json/jsontext"

// MarshalJSONTo writes the message to enc as one JSON value, the bytes of
// [Message.AppendJSON] (reformatted only as enc's options ask, such as
// escaping for HTML). It is compiled only with GOEXPERIMENT=jsonv2, where
// encoding/json (v1 and v2) prefers it to MarshalJSON: the message is
// encoded into a pooled buffer, and json.Marshal(m) then costs one
// validating copy instead of MarshalJSON's allocation and a re-scan (see
// BenchmarkEncodeWays).
func (m Message) MarshalJSONTo(enc *jsontext.Encoder) error {
	return m.pooledJSON(func(b []byte) error { return enc.WriteValue(jsontext.Value(b)) })
}
