// Package pgtest gives tests a fresh PostgreSQL schema of their own on the server named by
// BERTH_TEST_POSTGRES (scripts/postgres.sh starts one; scripts/test.sh exports it).
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// DSN returns the DSN of a new, empty schema, dropped when the test ends. Without
// BERTH_TEST_POSTGRES the test is skipped, unless BERTH_REQUIRE_POSTGRES=1 (as in CI), where
// that is a failure.
func DSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("BERTH_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("BERTH_REQUIRE_POSTGRES") == "1" {
			t.Fatal("BERTH_TEST_POSTGRES is not set: start a server with scripts/postgres.sh")
		}
		t.Skip("no PostgreSQL: set BERTH_TEST_POSTGRES (scripts/postgres.sh start DIR prints it)")
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
