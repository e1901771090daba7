package idempotency

import (
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/walrelay/walrelay/message"
)

// ChangeKey returns the idempotency key of a change: the standard padded
// base64 of "<commit_lsn>:<commit_idx>" in decimal.
func ChangeKey(commitLSN message.LSN, commitIdx int) string {
	var buf [48]byte
	b := strconv.AppendUint(buf[:0], uint64(commitLSN), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(commitIdx), 10)
	return base64.StdEncoding.EncodeToString(b)
}

// ReadKey returns the idempotency key of a backfill read: the standard padded
// base64 of "<backfill_id>:<pk1>[:<pk2>…]". Primary-key values are written in
// their text form ([]byte as base64, others with fmt's %v).
func ReadKey(backfillID string, pk ...any) string {
	b := make([]byte, 0, 64)
	b = append(b, backfillID...)
	for _, v := range pk {
		b = append(b, ':')
		b = appendKeyValue(b, v)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func appendKeyValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return append(b, v...)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int32:
		return strconv.AppendInt(b, int64(v), 10)
	case []byte:
		return base64.StdEncoding.AppendEncode(b, v)
	case fmt.Stringer:
		return append(b, v.String()...)
	case nil:
		return b
	default:
		return fmt.Append(b, v)
	}
}
