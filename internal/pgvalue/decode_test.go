package pgvalue

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/walrelay/walrelay/message"
)

const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidBoolArr     = 1000
	oidByteaArr    = 1001
	oidInt4Arr     = 1007
	oidTextArr     = 1009
	oidBoxArr      = 1020
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidTstzArr     = 1185
	oidNumeric     = 1700
	oidInterval    = 1186
	oidJSONB       = 3802
	oidJSONBArr    = 3807
)

func TestDecodeScalars(t *testing.T) {
	m := NewMapper()
	tests := []struct {
		oid  uint32
		text string
		want any
	}{
		{oidInt2, "-5", int64(-5)},
		{oidInt8, "+17", int64(17)},
		{oidInt8, "-9223372036854775808", int64(-9223372036854775808)},
		{oidFloat8, "-0", 0.0},
		{oidFloat8, "1e+300", 1e300},
		{oidFloat8, "1.7976931348623157e+308", 1.7976931348623157e308},
		{oidFloat4, "-Infinity", "-Infinity"},
		{oidNumeric, "12.3400", message.Numeric("12.3400")},
		{oidNumeric, "-0.5", message.Numeric("-0.5")},
		{oidNumeric, "Infinity", message.Numeric("Infinity")},
		{oidBool, "t", true},
		{oidBytea, `\x00FF`, `\x00ff`},
		{oidBytea, `\x00ff48656c6c6f`, `\x00ff48656c6c6f`},
		{oidBytea, `ab\\c\000\377`, `\x61625c6300ff`},
		{oidBytea, ``, `\x`},
		{oidInterval, "1 year 2 mons 3 days 04:05:06.789", message.Interval{Months: 14, Days: 3, Microseconds: 14706789000}},
		{oidInterval, "1 year 2 mons", message.Interval{Months: 14}},
		{oidInterval, "3 days", message.Interval{Days: 3}},
		{oidInterval, "04:05:06", message.Interval{Microseconds: 14706000000}},
		{oidInterval, "-1 mons -3 days -00:00:01", message.Interval{Months: -1, Days: -3, Microseconds: -1000000}},
		{oidInterval, "2 years", message.Interval{Months: 24}},
		{oidInterval, "01:00:00", message.Interval{Microseconds: 3600000000}},
		{oidInterval, "100:00:00", message.Interval{Microseconds: 360000000000}},
		{oidInterval, "-1 days +00:00:01.5", message.Interval{Days: -1, Microseconds: 1500000}},
		{oidInterval, "00:00:00", message.Interval{}},
		{oidInterval, "infinity", "infinity"},
		{oidInterval, "-2562047788:00:54.775808", message.Interval{Microseconds: math.MinInt64}},
		{oidJSON, ` {"a" : 1} `, json.RawMessage(` {"a" : 1} `)},
		{oidTimestamptz, "2024-10-28 21:37:01.12747+00", "2024-10-28T21:37:01.127470Z"},
		{oidTimestamptz, "2024-10-28 21:37:01-09:30", "2024-10-29T07:07:01.000000Z"},
		{oidTimestamptz, "1883-11-18 12:03:58-04:56:02", "1883-11-18T17:00:00.000000Z"},
		{oidTimestamptz, "2024-12-31 23:30:00.1-01", "2025-01-01T00:30:00.100000Z"},
		{oidTimestamptz, "2024-03-01 00:30:00+01", "2024-02-29T23:30:00.000000Z"},
		{oidTimestamptz, "0001-01-01 00:30:00+01", "0000-12-31T23:30:00.000000Z"},
		{oidTimestamptz, "4714-11-24 00:00:00+00 BC", "-4713-11-24T00:00:00.000000Z"},
		{oidTimestamptz, "-infinity", "-infinity"},
		{oidTimestamp, "2024-10-28 21:37:01.000001", "2024-10-28T21:37:01.000001"},
		{oidTimestamp, "0010-06-01 00:00:00 BC", "-0009-06-01T00:00:00.000000"},
		{oidText, "", ""},
		{2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{99999, "anything (1,2)", "anything (1,2)"}, // unresolved: text
	}
	for _, tt := range tests {
		got, err := m.Decode(tt.oid, []byte(tt.text))
		if err != nil {
			t.Errorf("Decode(%d, %q): %v", tt.oid, tt.text, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Decode(%d, %q) = %#v, want %#v", tt.oid, tt.text, got, tt.want)
		}
	}
}

func TestDecodeScalarErrors(t *testing.T) {
	m := NewMapper()
	tests := []struct {
		oid  uint32
		text string
	}{
		{oidInt8, ""}, {oidInt8, "-"}, {oidInt8, "1.5"}, {oidInt8, "9223372036854775808"},
		{oidInt8, "-9223372036854775809"}, {oidInt8, "99999999999999999999"}, {oidInt4, " 1"},
		{oidFloat8, ""}, {oidFloat8, "inf"}, {oidFloat8, "nan"}, {oidFloat8, "0x1p3"}, {oidFloat8, "1_0"},
		{oidFloat8, "."}, {oidFloat8, "1e"}, {oidFloat8, "1e999"},
		{oidNumeric, ""}, {oidNumeric, "01"}, {oidNumeric, "1."}, {oidNumeric, ".5"}, {oidNumeric, "1e"},
		{oidNumeric, "nan"}, {oidNumeric, "+1"}, {oidNumeric, "1 "},
		{oidBool, "true"}, {oidBool, ""}, {oidBool, "T"},
		{oidBytea, `\x0`}, {oidBytea, `\xzz`}, {oidBytea, `a\`}, {oidBytea, `\400`}, {oidBytea, `\12`},
		{oidJSONB, ``},
		{oidInterval, ""}, {oidInterval, "1"}, {oidInterval, "1 fortnight"}, {oidInterval, "P1Y2M"}, // iso_8601 style
		{oidInterval, "@ 1 day"}, {oidInterval, "1 day  02:00:00"}, {oidInterval, "02:00:00 1 day"},
		{oidInterval, "1:2:3"}, {oidInterval, "01:60:00"}, {oidInterval, "01:00:00."}, {oidInterval, "01:00:00.1234567"},
		{oidInterval, "1 year 01:00:00 01:00:00"}, {oidInterval, "300000000 years"}, {oidInterval, "99999999999999999999:00:00"},
		{oidTimestamptz, "2024-10-28 21:37:01"},            // no offset
		{oidTimestamptz, "2024-10-28T21:37:01+00"},         // not ISO DateStyle
		{oidTimestamptz, "Mon Oct 28 21:37:01 2024 UTC"},   // DateStyle Postgres
		{oidTimestamptz, "2024-10-28 21:37:01.1234567+00"}, // 7 fractional digits
		{oidTimestamptz, "2024-02-30 00:00:00+00"},         // no such day
		{oidTimestamptz, "2023-02-29 00:00:00+00"},         // not a leap year
		{oidTimestamptz, "2024-13-01 00:00:00+00"},         // no such month
		{oidTimestamptz, "2024-01-01 24:00:00+00"},         // no such hour
		{oidTimestamptz, "2024-01-01 00:00:00+00 AD"},      // junk
		{oidTimestamptz, "0000-01-01 00:00:00+00 BC"},      // no year 0 BC
		{oidTimestamptz, "2024-01-01 00:00:00+16"},         // offset out of range
		{oidTimestamp, "2024-01-01 00:00:00+00"},           // offset on a timestamp
		{oidTimestamp, "24-01-01 00:00:00"},                // short year
		{oidTimestamp, "2024-01-01 00:00:00."},             // empty fraction
	}
	for _, tt := range tests {
		got, err := m.Decode(tt.oid, []byte(tt.text))
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("Decode(%d, %q) = %#v, %v; want a *DecodeError", tt.oid, tt.text, got, err)
			continue
		}
		if de.OID != tt.oid {
			t.Errorf("Decode(%d, %q): error names oid %d", tt.oid, tt.text, de.OID)
		}
	}
}

func TestDecodeArrays(t *testing.T) {
	m := NewMapper()
	tests := []struct {
		name string
		oid  uint32
		text string
		want any
	}{
		{"empty", oidInt4Arr, "{}", []any{}},
		{"one", oidInt4Arr, "{1}", []any{int64(1)}},
		{"null", oidInt4Arr, "{NULL,null,NuLl}", []any{nil, nil, nil}},
		{"spaces", oidInt4Arr, " { 1 , 2 } ", []any{int64(1), int64(2)}},
		{"2d", oidInt4Arr, "{{1,2},{3,4}}", []any{[]any{int64(1), int64(2)}, []any{int64(3), int64(4)}}},
		{"2d spaces", oidInt4Arr, "{ {1} , {2} }", []any{[]any{int64(1)}, []any{int64(2)}}},
		{"bounds", oidInt4Arr, "[0:1]={1,2}", []any{int64(1), int64(2)}},
		{"bounds 2d", oidInt4Arr, "[1:1][-2:-1]={{1,2}}", []any{[]any{int64(1), int64(2)}}},
		{"quoted null is text", oidTextArr, `{"NULL",NULL}`, []any{"NULL", nil}},
		{"escapes", oidTextArr, `{"a\"b","c\\d","\{"}`, []any{`a"b`, `c\d`, `{`}},
		{"unquoted escapes", oidTextArr, `{a\,b,c\ ,\N\U\L\L}`, []any{"a,b", "c ", "NULL"}},
		{"inner spaces kept", oidTextArr, `{a b,  c d  }`, []any{"a b", "c d"}},
		{"quoted spaces kept", oidTextArr, `{"  "}`, []any{"  "}},
		{"empty string", oidTextArr, `{""}`, []any{""}},
		{"braces in quotes", oidTextArr, `{"{a,b}","}"}`, []any{"{a,b}", "}"}},
		{"utf8", oidTextArr, `{héllo,"wörld"}`, []any{"héllo", "wörld"}},
		{"bool", oidBoolArr, "{t,f}", []any{true, false}},
		{"bytea", oidByteaArr, `{"\\x00ff","\\x"}`, []any{`\x00ff`, `\x`}},
		{"jsonb", oidJSONBArr, `{"{\"a\": [1, 2]}",null}`, []any{json.RawMessage(`{"a": [1, 2]}`), nil}},
		{"timestamptz", oidTstzArr, `{"2024-10-28 21:37:01.12747+00"}`, []any{"2024-10-28T21:37:01.127470Z"}},
		{"box uses ;", oidBoxArr, "{(1,1),(0,0);(3,3),(2,2)}", []any{"(1,1),(0,0)", "(3,3),(2,2)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Decode(tt.oid, []byte(tt.text))
			if err != nil {
				t.Fatalf("Decode(%q): %v", tt.text, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode(%q) = %#v, want %#v", tt.text, got, tt.want)
			}
		})
	}
}

func TestDecodeArrayErrors(t *testing.T) {
	m := NewMapper()
	for _, text := range []string{
		"", "{", "}", "{1", "{1,}", "{,1}", "{1,,2}", "{1}}", "{1} x", "1", "{{1},2}", "{1,{2}}",
		`{"a}`, `{"a"b}`, `{a"b"}`, "{{1}", "[1:2]{1,2}", "[1:2", "[a]={1}", "=", `{\`, `{"\`, "{1;2}",
		"{x}", "{1.5}", `{"1"x}`, "{{}}",
	} {
		oid := uint32(oidInt4Arr)
		if text == `{"a}` || text == `{"a"b}` || text == `{a"b"}` || text == `{\` || text == `{"\` {
			oid = oidTextArr
		}
		got, err := m.Decode(oid, []byte(text))
		if err == nil {
			t.Errorf("Decode(%d, %q) = %#v, want an error", oid, text, got)
			continue
		}
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("Decode(%q): %v is not a *DecodeError", text, err)
		}
	}
	// An element's error names the element type.
	_, err := m.Decode(oidInt4Arr, []byte("{1,x}"))
	var de *DecodeError
	if !errors.As(err, &de) || de.OID != oidInt4 || !errors.Is(err, ErrSyntax) {
		t.Fatalf("got %v, want a syntax error naming int4", err)
	}
}

func TestDecodeArrayDepthLimit(t *testing.T) {
	m := NewMapper()
	deep := make([]byte, 0, 200)
	for range 100 {
		deep = append(deep, '{')
	}
	deep = append(deep, '1')
	for range 100 {
		deep = append(deep, '}')
	}
	if _, err := m.Decode(oidInt4Arr, deep); !errors.Is(err, errArrayDepth) {
		t.Fatalf("got %v, want errArrayDepth", err)
	}
}

// TestDecodeDoesNotRetain checks that no decoded value shares memory with
// the input, which callers reuse.
func TestDecodeDoesNotRetain(t *testing.T) {
	m := NewMapper()
	for _, tt := range []struct {
		oid  uint32
		text string
	}{
		{oidText, "abc"}, {oidNumeric, "1.5"}, {oidJSONB, `{"a":1}`}, {oidBytea, `\x0102`},
		{oidTextArr, `{a,"b c"}`}, {oidJSONBArr, `{"[1]"}`}, {oidTimestamptz, "2024-01-01 00:00:00+00"},
	} {
		buf := []byte(tt.text)
		got, err := m.Decode(tt.oid, buf)
		if err != nil {
			t.Fatal(err)
		}
		before := fmt.Sprintf("%#v", got)
		for i := range buf {
			buf[i] = '#'
		}
		if after := fmt.Sprintf("%#v", got); after != before {
			t.Errorf("Decode(%d, %q) changed with its input: %s, then %s", tt.oid, tt.text, before, after)
		}
	}
}

func ExampleMapper_Decode() {
	m := NewMapper()
	for _, c := range []struct {
		oid  uint32
		text string
	}{
		{1184, "2024-10-28 23:37:01.12747+02"}, // timestamptz
		{1700, "3.14159265358979323846264338327950288"},
		{701, "NaN"},                                // float8
		{1009, `{a,"b,c",NULL}`},                    // text[]
		{17, `\xdeadbeef`},                          // bytea
		{1186, "1 year 2 mons 3 days 04:05:06.789"}, // interval
		{3802, `{"a": [1, 2]}`},                     // jsonb
	} {
		v, err := m.Decode(c.oid, []byte(c.text))
		if err != nil {
			fmt.Println(err)
			continue
		}
		js, _ := json.Marshal(v)
		fmt.Printf("%T %s\n", v, js)
	}
	// Output:
	// string "2024-10-28T21:37:01.127470Z"
	// message.Numeric "3.14159265358979323846264338327950288"
	// string "NaN"
	// []interface {} ["a","b,c",null]
	// string "\\xdeadbeef"
	// message.Interval {"days":3,"microseconds":14706789000,"months":14}
	// json.RawMessage {"a":[1,2]}
}
