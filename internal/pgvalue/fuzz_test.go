package pgvalue

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// fuzzOIDs are the types FuzzDecode exercises; the fuzzer picks one by index.
var fuzzOIDs = []uint32{
	oidInt8, oidInt4, oidFloat8, oidFloat4, oidNumeric, oidBool, oidBytea, oidText, oidJSON, oidJSONB,
	oidTimestamptz, oidTimestamp, oidInt4Arr, oidTextArr, oidByteaArr, oidBoxArr, oidJSONBArr, oidTstzArr,
	1231, // numeric[]
	fuzzDomainArray, fuzzArrayOfDomainArray,
}

const (
	fuzzDomain             = 900001 // a domain over int8
	fuzzDomainArray        = 900002 // an array of fuzzDomain
	fuzzDomainOverArray    = 900003 // a domain over text[]
	fuzzArrayOfDomainArray = 900004 // an array of fuzzDomainOverArray
)

// fuzzMapper knows a few user-defined types, as Resolve would record them.
func fuzzMapper() *Mapper {
	m := NewMapper()
	types := map[uint32]typeInfo{
		fuzzDomain:             {kind: kindInt},
		fuzzDomainArray:        {kind: kindArray, elem: fuzzDomain, delim: ','},
		fuzzDomainOverArray:    {kind: kindArray, elem: oidText, delim: ','},
		fuzzArrayOfDomainArray: {kind: kindArray, elem: fuzzDomainOverArray, delim: ','},
	}
	m.types.Store(&types)
	return m
}

// FuzzDecode checks that Decode never panics, that whatever it accepts is
// JSON-ready (encoding/json can encode it; json and jsonb text excepted,
// which is not re-validated), that DecodeIn agrees with it, and that neither
// keeps the text it decoded.
func FuzzDecode(f *testing.F) {
	seeds := []struct {
		sel  uint8
		text string
	}{
		{0, "-9223372036854775808"}, {2, "1.5e-300"}, {2, "NaN"}, {4, "-0.000100"}, {4, "Infinity"},
		{5, "t"}, {6, `\xdeadbeef`}, {6, `a\\b\000`}, {8, `{"a": [1, 2.5e3, "\u0000"]}`},
		{10, "2024-10-28 21:37:01.12747+05:30"}, {10, "0044-03-15 12:00:00-04:56:02 BC"},
		{11, "294276-12-31 23:59:59.999999"}, {12, "[0:1]={1,NULL}"}, {12, "{{1,2},{3,4}}"},
		{13, `{"a\"b",c\,d,NULL,"",  x y  }`}, {14, `{"\\x00ff",NULL}`}, {15, "{(1,1),(0,0);(2,2),(1,1)}"},
		{16, `{"{\"a\": 1}",null}`}, {17, `{"2024-10-28 21:37:01+00",infinity}`}, {18, "{1.5,NaN}"},
		{19, "{1,2,NULL}"}, {20, `{"{a,b}","{\"c d\"}",NULL}`},
	}
	for _, s := range seeds {
		f.Add(s.sel, []byte(s.text))
	}
	m := fuzzMapper()
	var a Arena
	f.Fuzz(func(t *testing.T, sel uint8, text []byte) {
		oid := fuzzOIDs[int(sel)%len(fuzzOIDs)]
		// Each decodes its own copy of text, overwritten afterwards: a
		// stream decodes from its receive buffer, which the next receive
		// overwrites, so neither may keep the text.
		buf, own := bytes.Clone(text), bytes.Clone(text)
		v, err := m.Decode(oid, buf)
		in, inErr := m.DecodeIn(&a, oid, own)
		clear(buf)
		clear(own)
		if (err == nil) != (inErr == nil) || !reflect.DeepEqual(v, in) {
			t.Fatalf("Decode(%d, %q) = %#v, %v; DecodeIn %#v, %v (after the text was overwritten)", oid, text, v, err, in, inErr)
		}
		if again, _ := m.Decode(oid, text); !reflect.DeepEqual(v, again) {
			t.Fatalf("Decode(%d, %q) = %#v, but %#v once its text was overwritten", oid, text, again, v)
		}
		if err != nil || hasRawJSON(v) {
			return // json text is passed on as Postgres sent it: the message encoder checks it
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("Decode(%d, %q) = %#v, which encoding/json rejects: %v", oid, text, v, err)
		}
	})
}

func hasRawJSON(v any) bool {
	switch v := v.(type) {
	case json.RawMessage:
		return true
	case []any:
		for _, e := range v {
			if hasRawJSON(e) {
				return true
			}
		}
	}
	return false
}
