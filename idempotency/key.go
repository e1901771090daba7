package idempotency

import (
	"encoding/base64"
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
// base64 of "<backfill_id>:<pk1>[:<pk2>…]", the values in the text form of
// [message.AppendKeyText].
func ReadKey(backfillID string, pk ...any) string {
	var buf [128]byte
	return string(AppendReadKey(buf[:0], backfillID, pk...))
}

// AppendReadKey appends [ReadKey](backfillID, pk…) to dst and returns the
// extended buffer, for readers that store many keys in one block.
func AppendReadKey(dst []byte, backfillID string, pk ...any) []byte {
	var buf [96]byte
	b := append(buf[:0], backfillID...)
	for _, v := range pk {
		b = append(b, ':')
		b = message.AppendKeyText(b, v)
	}
	return base64.StdEncoding.AppendEncode(dst, b)
}
