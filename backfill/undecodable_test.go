package backfill

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/walrelay/walrelay/internal/pgtest"
	"github.com/walrelay/walrelay/internal/pgvalue"
)

// A session whose DateStyle is not ISO prints timestamps the mapping cannot
// read. Without Config.Undecodable the iterator stops with an error naming
// the table and column; with it, the hook's value is delivered in the
// value's place and the rest of the row, and the next row, decode.
func TestUndecodableValue(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pgtest.Exec(t, url, "create table ev (id int primary key, at timestamptz)",
		"insert into ev values (1, '2024-10-28 21:37:01+00'), (2, null)")
	conn := connect(t, url)
	if _, err := conn.Exec(context.Background(), "set DateStyle = 'SQL, DMY'; set TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}

	it, err := New(t.Context(), conn, Config{Table: "public.ev", ID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = it.Next(t.Context(), conn)
	var de *pgvalue.DecodeError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "ev") || !strings.Contains(err.Error(), "column at") {
		t.Fatalf("without Undecodable: %v, want a decode error naming the table and column at", err)
	}

	var seen []string
	it, err = New(t.Context(), conn, Config{Table: "public.ev", ID: "u",
		Undecodable: func(column string, text []byte, err error) (any, error) {
			seen = append(seen, column+"="+string(text))
			return "raw:" + string(text), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	msgs := readAll(t, it, conn)
	if len(msgs) != 2 || msgs[0].Record["id"] != int64(1) || msgs[1].Record["id"] != int64(2) || msgs[1].Record["at"] != nil {
		t.Fatalf("reads = %v", msgs)
	}
	const text = "28/10/2024 21:37:01 UTC"
	if msgs[0].Record["at"] != "raw:"+text || len(seen) != 1 || seen[0] != "at="+text {
		t.Fatalf("row 1: at = %v, hook saw %q; want the hook's value for %q", msgs[0].Record["at"], seen, text)
	}
}
