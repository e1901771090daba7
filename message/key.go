package message

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// AppendKeyText appends the text form of a primary-key value: strings and
// [Numeric] as they are, integers in decimal, []byte as Postgres bytea hex
// text (\x00ff), time.Time as in
// JSON (UTC, six fractional digits, Z) without quotes, nil as nothing, and
// other values (json.Number, float64, …) with fmt's %v. It is the one
// formatting of key values: idempotency keys of reads, Kafka message keys and
// legacy event ids all use it, so the same row always gets the same key.
func AppendKeyText(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return dst
	case string:
		return append(dst, v...)
	case Numeric:
		return append(dst, v...)
	case int64:
		return strconv.AppendInt(dst, v, 10)
	case int:
		return strconv.AppendInt(dst, int64(v), 10)
	case int32:
		return strconv.AppendInt(dst, int64(v), 10)
	case []byte:
		dst = append(dst, '\\', 'x')
		return hex.AppendEncode(dst, v)
	case time.Time:
		if b, err := appendTime(dst, v); err == nil {
			return b
		}
		return fmt.Append(dst, v)
	case fmt.Stringer:
		return append(dst, v.String()...)
	default:
		return fmt.Append(dst, v)
	}
}

// AppendKey appends the record's primary-key values (Metadata.PrimaryKey
// order) in text form, joined with ":". A key column missing from the record
// is written as nothing.
func (m Message) AppendKey(dst []byte) []byte {
	for i, col := range m.Metadata.primaryKey {
		if i > 0 {
			dst = append(dst, ':')
		}
		dst = AppendKeyText(dst, m.Record[col])
	}
	return dst
}

// ChangeKey returns the idempotency key of a change (Metadata.IdempotencyKey): the standard padded
// base64 of "<commit_lsn>:<commit_idx>" in decimal.
func ChangeKey(commitLSN LSN, commitIdx int) string {
	var buf [56]byte // the longest key: base64 of 40 bytes
	return string(AppendChangeKey(buf[:0], commitLSN, commitIdx))
}

// AppendChangeKey appends [ChangeKey](commitLSN, commitIdx) to dst and
// returns the extended buffer, for readers that store many keys in one block.
func AppendChangeKey(dst []byte, commitLSN LSN, commitIdx int) []byte {
	var buf [48]byte
	b := strconv.AppendUint(buf[:0], uint64(commitLSN), 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(commitIdx), 10)
	return base64.StdEncoding.AppendEncode(dst, b)
}

// ReadKey returns the idempotency key of a backfill read (Metadata.IdempotencyKey): the standard padded
// base64 of "<backfill_id>:<pk1>[:<pk2>…]", the values in the text form of
// [AppendKeyText].
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
		b = AppendKeyText(b, v)
	}
	return base64.StdEncoding.AppendEncode(dst, b)
}
