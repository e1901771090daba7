package message_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/walrelay/walrelay/message"
)

func TestParseTable(t *testing.T) {
	long := strings.Repeat("a", message.MaxIdentifierLength)
	cases := []struct {
		in            string
		schema, table string
	}{
		{"orders", "", "orders"},
		{"public.orders", "public", "orders"},
		{"Orders", "", "orders"},
		{"Sales.Orders", "sales", "orders"},
		{`"Orders"`, "", "Orders"},
		{`"Sales"."Orders"`, "Sales", "Orders"},
		{`"my.schema".orders`, "my.schema", "orders"},
		{`"my.schema"."a.b"`, "my.schema", "a.b"},
		{`sales."a.b"`, "sales", "a.b"},
		{`"say ""hi"""`, "", `say "hi"`},
		{`"""".""""`, `"`, `"`},
		{`"a b".c`, "a b", "c"},
		{`"."`, "", "."},
		{`"x.y.z"`, "", "x.y.z"},
		{"_t1$", "", "_t1$"},
		{"t_2", "", "t_2"},
		{"Çafé", "", "Çafé"}, // only ASCII folds
		{"ÜBER.Straße", "Über", "straße"},
		{long, "", long},
		{`"` + long + `"`, "", long},
		{"s." + long, "s", long},
	}
	for _, c := range cases {
		schema, table, err := message.ParseTable(c.in)
		if err != nil {
			t.Errorf("ParseTable(%q): %v", c.in, err)
			continue
		}
		if schema != c.schema || table != c.table {
			t.Errorf("ParseTable(%q) = %q, %q; want %q, %q", c.in, schema, table, c.schema, c.table)
		}
	}
}

func TestParseTableErrors(t *testing.T) {
	long := strings.Repeat("a", message.MaxIdentifierLength+1)
	for _, in := range []string{
		"",
		".",
		".orders",
		"public.",
		"a.b.c",
		`"my.schema".a.b`,
		`""`,
		`"".orders`,
		`"unterminated`,
		`"a"b`,
		`"a".`,
		"public. orders",
		" orders",
		"orders ",
		"my-table",
		"my table",
		"1orders",
		"$orders",
		"a;drop table x",
		`a"b"`,
		"s.\xff",
		"\xff",
		"\"a\x00b\"",
		long,
		`"` + long + `"`,
		"s." + long,
	} {
		schema, table, err := message.ParseTable(in)
		if !errors.Is(err, message.ErrTableName) {
			t.Errorf("ParseTable(%q) = %q, %q, %v; want an ErrTableName error", in, schema, table, err)
		}
	}
}

// quote writes name as a quoted identifier.
func quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

func FuzzParseTable(f *testing.F) {
	for _, s := range []string{"orders", "public.orders", `"my.schema"."Orders"`, `"a""b".c`, "Ab$1.x_y", `"`, "a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		schema, table, err := message.ParseTable(s)
		if err != nil {
			if !errors.Is(err, message.ErrTableName) {
				t.Fatalf("ParseTable(%q): error %v does not wrap ErrTableName", s, err)
			}
			return
		}
		if table == "" {
			t.Fatalf("ParseTable(%q): empty table", s)
		}
		// The quoted form of what was parsed parses back to the same names.
		q := quote(table)
		if schema != "" {
			q = quote(schema) + "." + q
		}
		s2, t2, err := message.ParseTable(q)
		if err != nil || s2 != schema || t2 != table {
			t.Fatalf("ParseTable(%q) = %q, %q; its quoted form %s parses as %q, %q, %v", s, schema, table, q, s2, t2, err)
		}
	})
}

func ExampleParseTable() {
	for _, name := range []string{"orders", "Sales.Orders", `"Sales"."Orders"`, `"my.schema"."line ""items"""`} {
		schema, table, err := message.ParseTable(name)
		fmt.Printf("%-30s schema %q table %q err %v\n", name, schema, table, err)
	}
	_, _, err := message.ParseTable("my-table")
	fmt.Println(err)
	// Output:
	// orders                         schema "" table "orders" err <nil>
	// Sales.Orders                   schema "sales" table "orders" err <nil>
	// "Sales"."Orders"               schema "Sales" table "Orders" err <nil>
	// "my.schema"."line ""items"""   schema "my.schema" table "line \"items\"" err <nil>
	// invalid table name "my-table": unquoted name part contains '-' (quote the part to use it)
}
