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
	bp := bufPool.Get().(*[]byte)
	b, err := m.AppendJSON((*bp)[:0])
	if err == nil {
		err = enc.WriteValue(jsontext.Value(b))
	}
	if cap(b) <= maxPooledBuf {
		*bp = b[:0]
	}
	bufPool.Put(bp)
	return err
}
