package pgvalue

import (
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// variantCases cover every kind DecodeIn handles itself,
// their fall-backs (specials, syntax errors) and the kinds they hand to
// Decode.
var variantCases = []struct {
	oid  uint32
	text string
}{
	{oidText, ""}, {oidText, "abc"}, {2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}, {99999, "(1,2)"},
	{oidNumeric, "12.3400"}, {oidNumeric, "-0.5"}, {oidNumeric, "Infinity"}, {oidNumeric, "NaN"},
	{oidNumeric, ""}, {oidNumeric, "01"}, {oidNumeric, "1."}, {oidNumeric, "nan"}, {oidNumeric, "+1"},
	{oidInt8, "-42"}, {oidInt8, "7"}, {oidInt8, "-9223372036854775808"}, {oidInt8, "x"}, {oidInt8, ""},
	{oidInt4, "2147483647"}, {oidFloat8, "1e+300"}, {oidFloat8, "-0"}, {oidFloat4, "1.1"},
	{oidFloat8, "NaN"}, {oidFloat8, "-Infinity"}, {oidFloat8, "1e"}, {oidFloat8, "1e999"},
	{oidBool, "f"}, {oidBool, "t"}, {oidBool, "x"}, {oidBytea, `\x00FF`},
	{oidJSONB, `{"a":1}`}, {oidJSON, ` [1, 2] `}, {oidJSON, `{"a":`}, {oidJSONB, ``},
	{oidTimestamptz, "2024-10-28 21:37:01.12747+00"}, {oidTimestamptz, "2024-10-28 21:37:01.12747+05:30"},
	{oidTimestamptz, "0044-03-15 12:00:00-04:56:02 BC"}, {oidTimestamptz, "infinity"},
	{oidTimestamptz, "-infinity"}, {oidTimestamptz, "2024-10-28"}, {oidTimestamp, "294276-12-31 23:59:59.999999"},
	{oidTimestamp, "2024-10-28 21:37:01"}, {oidTextArr, `{a,"b c",NULL}`}, {oidInt4Arr, "{1,2}"},
}

// TestDecodeVariantsMatchDecode checks that DecodeIn returns
// what Decode returns, values and errors alike.
func TestDecodeVariantsMatchDecode(t *testing.T) {
	m := NewMapper()
	var a Arena
	variants := []struct {
		name   string
		decode func(oid uint32, text []byte) (any, error)
	}{
		{"DecodeIn", func(oid uint32, text []byte) (any, error) { return m.DecodeIn(&a, oid, text) }},
	}
	for _, tt := range variantCases {
		want, wantErr := m.Decode(tt.oid, []byte(tt.text))
		for _, v := range variants {
			got, err := v.decode(tt.oid, []byte(tt.text))
			if (err != nil) != (wantErr != nil) || (err != nil && err.Error() != wantErr.Error()) {
				t.Errorf("%s(%d, %q) error %v, Decode's %v", v.name, tt.oid, tt.text, err, wantErr)
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s(%d, %q) = %#v, Decode's %#v", v.name, tt.oid, tt.text, got, want)
			}
		}
	}
}

// TestDecodeInValuesSurvive decodes enough values to fill several blocks of
// every kind, overwrites the input buffer, collects garbage and checks every
// value is still what Decode gives: the arena's values own their memory and
// keep their blocks alive.
func TestDecodeInValuesSurvive(t *testing.T) {
	m := NewMapper()
	var a Arena
	type kept struct {
		oid  uint32
		text string
		v    any
	}
	var all []kept
	buf := make([]byte, 0, 64)
	for i := range 3 * arenaSlab {
		for _, c := range []struct {
			oid  uint32
			text string
		}{
			{oidText, fmt.Sprintf("text %d", i)},
			{oidInt8, fmt.Sprint(i * 1000003)},
			{oidFloat8, fmt.Sprint(float64(i) / 7)},
			{oidNumeric, fmt.Sprintf("%d.%02d", i, i%100)},
			{oidJSONB, fmt.Sprintf(`{"i": %d}`, i)},
			{oidTimestamptz, fmt.Sprintf("2024-10-28 21:%02d:%02d.%06d+02", i/60%60, i%60, i)},
			{oidText, strings.Repeat("x", arenaTextBlock/3+i)}, // larger than a quarter block
		} {
			buf = append(buf[:0], c.text...)
			v, err := m.DecodeIn(&a, c.oid, buf)
			if err != nil {
				t.Fatal(err)
			}
			for j := range buf {
				buf[j] = '!'
			}
			all = append(all, kept{c.oid, c.text, v})
		}
		if i%200 == 0 {
			runtime.GC()
		}
	}
	a = Arena{}
	runtime.GC()
	runtime.GC()
	for _, k := range all {
		want, err := m.Decode(k.oid, []byte(k.text))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(k.v, want) {
			t.Fatalf("value of %d %q became %#v, want %#v", k.oid, k.text, k.v, want)
		}
	}
	// The values behave as ordinary ones: type switches, equality, JSON.
	var v any = all[8].v
	if n, ok := v.(int64); !ok || n != 1000003 {
		t.Errorf("int value %#v", v)
	}
	if all[0].v != "text 0" {
		t.Errorf("text value %#v", all[0].v)
	}
	b, err := json.Marshal([]any{all[0].v, all[8].v, all[3].v, all[4].v, all[5].v})
	if err != nil {
		t.Fatal(err)
	}
	if want := `["text 0",1000003,"0.00",{"i":0},"2024-10-28T19:00:00.000000Z"]`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
}

func TestDecodeInAllocations(t *testing.T) {
	m := NewMapper()
	var a Arena
	in := []struct {
		oid  uint32
		text []byte
	}{
		{oidText, []byte("pending")}, {oidInt8, []byte("123456")}, {oidNumeric, []byte("99.50")},
		{oidFloat8, []byte("1.25")}, {oidJSONB, []byte(`{"a": 1}`)},
		{oidTimestamptz, []byte("2024-10-28 21:37:01.12747+00")},
	}
	allocs := testing.AllocsPerRun(2000, func() {
		for _, c := range in {
			if _, err := m.DecodeIn(&a, c.oid, c.text); err != nil {
				t.Fatal(err)
			}
		}
	})
	// Six values per run; a new block every few hundred runs.
	if allocs > 0.1 {
		t.Errorf("DecodeIn: %.2f allocations per six values, want (amortised) none", allocs)
	}
}
