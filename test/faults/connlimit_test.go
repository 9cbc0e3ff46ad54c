package faults

import (
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestConnectionLimit: berth over a PostgreSQL role that may hold 3 connections. A replica whose
// pool is larger (database_max_connections=8) says so at start, and of 32 clients signing in at
// once, the requests that meet the role's limit get 503 with Retry-After — never a 500 or the
// driver's words; with the pool at the role's limit, the same load gets no refusal at all.
func TestConnectionLimit(t *testing.T) {
	dsn := os.Getenv("BERTH_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("BERTH_REQUIRE_POSTGRES") == "1" {
			t.Fatal("BERTH_TEST_POSTGRES is not set")
		}
		t.Skip("BERTH_TEST_POSTGRES is not set: PostgreSQL is not installed here")
	}
	limited := limitedRole(t, dsn, 3)
	migrate := exec.Command(berthBin, "migrate", "--database", limited)
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v %s", err, out)
	}
	kek := "BERTH_AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, tc := range []struct {
		pool       int
		warned     bool
		refusalsOK bool // whether 503s may (and must) appear
	}{
		{pool: 8, warned: true, refusalsOK: true},
		{pool: 3, warned: false, refusalsOK: false},
	} {
		t.Run(fmt.Sprintf("pool %d", tc.pool), func(t *testing.T) {
			p := newProcess(t, []string{kek, "BERTH_DATABASE_MAX_CONNECTIONS=" + strconv.Itoa(tc.pool)}, "--database", limited)
			logs := p.log()
			if got := strings.Contains(logs, "database_max_connections is more than PostgreSQL allows this role"); got != tc.warned {
				t.Errorf("warned at start: %v, want %v; log:\n%s", got, tc.warned, logs)
			}
			codes, bad := signInStorm(t, "http://"+p.addr, 32, 15)
			for _, b := range bad {
				t.Error(b)
			}
			if codes[200] == 0 {
				t.Errorf("no sign-in succeeded: %v", codes)
			}
			if tc.refusalsOK && codes[503] == 0 {
				t.Errorf("no request met the role's limit (pool %d over a limit of 3): %v", tc.pool, codes)
			}
			if !tc.refusalsOK && codes[503] != 0 {
				t.Errorf("a pool within the role's limit was refused: %v", codes)
			}
			t.Logf("pool %d: %v", tc.pool, codes)
		})
	}
}

// limitedRole creates a role that may hold n connections, with a database of its own, and
// returns its DSN; both are dropped at the end of the test.
func limitedRole(t *testing.T, dsn string, n int) string {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	name := "berth_limited_" + strings.ToLower(rand.Text()[:10])
	password := rand.Text()
	for _, q := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s' CONNECTION LIMIT %d", name, password, n),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", name, name),
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		db.Exec("DROP DATABASE " + name + " WITH (FORCE)")
		db.Exec("DROP ROLE " + name)
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(name, password)
	u.Path = "/" + name
	return u.String()
}

// signInStorm has clients sign in as the owner each times at once (every sign-in reads the
// user and the throttling counters and writes a login event) and counts the answers; bad lists
// every answer that is neither 200 nor a 503 with Retry-After and the outage's message.
func signInStorm(t *testing.T, base string, clients, each int) (map[int]int, []string) {
	t.Helper()
	var mu sync.Mutex
	codes := map[int]int{}
	var bad []string
	var wg sync.WaitGroup
	form := url.Values{"grant_type": {"password"}, "username": {"owner"}, "password": {ownerPassword}}.Encode()
	for range clients {
		wg.Go(func() {
			for range each {
				resp, err := http.Post(base+"/mgmt/v1/token", "application/x-www-form-urlencoded", strings.NewReader(form))
				if err != nil {
					mu.Lock()
					bad = append(bad, err.Error())
					mu.Unlock()
					continue
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				switch {
				case resp.StatusCode == 200:
				case resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "" && strings.Contains(string(body), "cannot reach its database") &&
					!strings.Contains(string(body), "SQLSTATE"):
				default:
					bad = append(bad, fmt.Sprintf("%d: %s", resp.StatusCode, body))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(bad) > 5 {
		bad = append(bad[:5], fmt.Sprintf("… and %d more", len(bad)-5))
	}
	return codes, bad
}
