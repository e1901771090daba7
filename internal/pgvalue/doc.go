// Package pgvalue maps Postgres values in text format to the JSON-ready Go
// values a message.Message holds. The replication stream (pgoutput sends
// every column as text) and the backfill reader (which asks for text
// results) both decode through it, so a row reads the same either way.
//
// Create one [Mapper] per connection target with [NewMapper], call
// [Mapper.Resolve] with the type OIDs of a table's columns before decoding
// its rows (it looks up only the user-defined types it has not seen), then
// call [Mapper.Decode] for every non-NULL value.
//
// The mapping:
//
//   - int2, int4, int8, oid: int64
//   - float4, float8: float64 parsed from the printed digits (so a float4
//     1.1 stays 1.1); NaN, Infinity and -Infinity: those strings
//   - numeric: message.Numeric holding the exact text, any length,
//     NaN, Infinity and -Infinity included
//   - bool: bool
//   - bytea: a string, its Postgres hex text (\x00ff…; escape bytea_output
//     is converted to it)
//   - interval: message.Interval (months, days, microseconds), from
//     IntervalStyle postgres, the default; infinity and -infinity
//     (PostgreSQL 17+): those strings
//   - json, jsonb: json.RawMessage (a copy; not re-validated: Postgres
//     stores only valid JSON, at any depth)
//   - timestamptz: string, RFC 3339 in UTC with exactly six fractional
//     digits and "Z" (2024-10-28T21:37:01.127470Z); timestamp: the same
//     without "Z"; infinity and -infinity stay those strings. Years before
//     1 AD use astronomical numbering ("0000" is 1 BC, "-0043" is 44 BC).
//   - arrays of any type, any number of dimensions: []any, nested per
//     dimension, NULL elements as nil, each element decoded by the element
//     type; lower bounds are dropped
//   - domains: as their base type
//   - everything else — text types, uuid, enums, date, time, timetz,
//     network and geometric types, money, xml, tsvector, ranges,
//     composites, extension types, types never resolved: the Postgres text
//     as a string
//
// Timestamps must be in DateStyle ISO, the Postgres default; other styles
// are a *[DecodeError]. Decode never panics and never keeps the text slice,
// so callers may reuse its buffer.
package pgvalue
