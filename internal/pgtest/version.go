package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
)

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// BinMajor returns the major version (14, 15, …) of the postgres binary in
// the directory bin.
func BinMajor(bin string) (int, error) {
	out, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		return 0, fmt.Errorf("pgtest: %s/postgres --version: %w", bin, err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgtest: %s/postgres --version: unexpected output %q", bin, out)
	}
	return strconv.Atoi(string(m[1]))
}

// BinFor returns the directory of the server binaries of a major version:
// $WALRELAY_PGBIN_<major>, then $PGBIN when it holds that major, then
// /usr/lib/postgresql/<major>/bin. .ci/matrix installs and sets them. It
// returns an error wrapping [ErrNoPostgres] when none is found.
func BinFor(major int) (string, error) {
	var dirs []string
	if d := os.Getenv("WALRELAY_PGBIN_" + strconv.Itoa(major)); d != "" {
		dirs = append(dirs, d)
	}
	if d := os.Getenv("PGBIN"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, fmt.Sprintf("/usr/lib/postgresql/%d/bin", major))
	for _, d := range dirs {
		if v, err := BinMajor(d); err == nil && v == major {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w for PostgreSQL %d (set WALRELAY_PGBIN_%d, or run .ci/matrix --install %d)", ErrNoPostgres, major, major, major)
}

// ServerMajor returns the major version of the server at url.
func ServerMajor(ctx context.Context, url string) (int, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(context.Background())
	var num int
	if err := conn.QueryRow(ctx, "select current_setting('server_version_num')::int").Scan(&num); err != nil {
		return 0, fmt.Errorf("pgtest: server version: %w", err)
	}
	return num / 10000, nil
}

// Major returns the major version of the server at url, failing the test
// when it cannot tell. Tests whose expectations differ by version branch on
// it and assert each version's behaviour.
func Major(t testing.TB, url string) int {
	t.Helper()
	v, err := ServerMajor(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
