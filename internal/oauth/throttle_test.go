package oauth_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
	"github.com/berth-registry/berth/internal/store"
)

// from sends GET u with Basic credentials as if from client address ip (the test server trusts
// the loopback proxy's X-Forwarded-For).
func from(t testing.TB, ip, u, user, pass string) int {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", ip)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func behindProxy(maxIdentity, maxAddress int) registrytest.Options {
	return registrytest.Options{Config: func(c *config.Config) {
		c.Network.TrustedProxies = []string{"127.0.0.1"}
		c.Auth.MaxFailures, c.Auth.AddressMaxFailures = maxIdentity, maxAddress
	}}
}

// TestSigninThrottlingByAddress checks the per-address limit: failures spread over many names
// from one address block that address, for every name, and no other address.
func TestSigninThrottlingByAddress(t *testing.T) {
	s := registrytest.New(t, behindProxy(100, 5))
	user, pass := s.Admin(t)
	v2 := s.URL + "/v2/"
	for i := range 4 {
		if st := from(t, "198.51.100.1", v2, "nobody-"+string(rune('a'+i)), "x"); st != 401 {
			t.Fatalf("failure %d: %d", i+1, st)
		}
	}
	if st := from(t, "198.51.100.1", v2, "nobody-e", "x"); st != 429 {
		t.Fatalf("the address's fifth failure: %d; want 429", st)
	}
	if st := from(t, "198.51.100.1", v2, user, pass); st != 429 {
		t.Errorf("the right password from the blocked address: %d; want 429", st)
	}
	if st := from(t, "198.51.100.2", v2, user, pass); st != 200 {
		t.Errorf("the right password from another address: %d; want 200", st)
	}
}

// TestSigninSuccessForgetsFailures checks that a successful sign-in clears the identity's
// failures: failures before it and after it are not added up.
func TestSigninSuccessForgetsFailures(t *testing.T) {
	s := registrytest.New(t, behindProxy(5, 100))
	user, pass := s.Admin(t)
	v2 := s.URL + "/v2/"
	for round := range 3 {
		for i := range 4 {
			if st := from(t, "198.51.100.1", v2, user, "wrong"); st != 401 {
				t.Fatalf("round %d, failure %d: %d; want 401", round, i+1, st)
			}
		}
		if st := from(t, "198.51.100.1", v2, user, pass); st != 200 {
			t.Fatalf("round %d: the right password after 4 failures: %d; want 200", round, st)
		}
	}
	// Without a success in between, the fifth failure blocks: the limit is real.
	for range 5 {
		from(t, "198.51.100.1", v2, user, "wrong")
	}
	if st := from(t, "198.51.100.1", v2, user, pass); st != 429 {
		t.Errorf("the right password after 5 failures in a row: %d; want 429", st)
	}
}

// TestRefusalsThatAreNotGuessesDoNotCount: a sign-in refused for another reason than a wrong
// secret or an unknown name (here a disabled admin user, with its right password) is not a guess
// and counts toward no limit: once the admin user is enabled again it signs in at once.
func TestRefusalsThatAreNotGuessesDoNotCount(t *testing.T) {
	s := registrytest.New(t, behindProxy(2, 2))
	user, pass := s.Admin(t)
	if st := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"adminUserEnabled": false}, nil); st != http.StatusOK {
		t.Fatalf("disable the admin user: %d", st)
	}
	for i := range 4 {
		if st := from(t, "198.51.100.1", s.URL+"/v2/", user, pass); st != 401 {
			t.Fatalf("sign-in %d of the disabled admin user: %d; want 401", i+1, st)
		}
	}
	if st := s.Mgmt(t, "PATCH", "/mgmt/v1/registries/default", map[string]any{"adminUserEnabled": true}, nil); st != http.StatusOK {
		t.Fatalf("enable the admin user: %d", st)
	}
	if st := from(t, "198.51.100.1", s.URL+"/v2/", user, pass); st != 200 {
		t.Errorf("the enabled admin user after four refusals: %d; want 200", st)
	}
}

// fromWithRetry is from, also returning Retry-After in seconds.
func fromWithRetry(t testing.TB, ip, u, user, pass string) (int, int) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("X-Forwarded-For", ip)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return resp.StatusCode, ra
}

// TestGuessersCannotLockOutTheOwner (issue 16, finding 3): wrong passwords from one address
// block that address for the identity, not the identity: its owner signs in from anywhere else,
// for the admin user, a token and a directory user alike. A guesser that keeps coming back is
// blocked for longer each time. Guessing from many addresses reaches the identity's ceiling,
// which blocks only addresses that never signed in as it: the owner's keep working.
func TestGuessersCannotLockOutTheOwner(t *testing.T) {
	clk := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clk.Now, Config: func(c *config.Config) {
		c.Network.TrustedProxies = []string{"127.0.0.1"}
	}})
	admin, adminPass := s.Admin(t)
	tokPass := createToken(t, s, "ci-robot", nil, map[string]any{"scopeMap": "_repositories_pull"})
	var alice struct{ Password string }
	if st := s.Mgmt(t, "POST", "/mgmt/v1/users", map[string]string{"name": "alice"}, &alice); st != http.StatusCreated {
		t.Fatalf("create alice: %d", st)
	}
	v2, dirToken := s.URL+"/v2/", s.URL+"/mgmt/v1/token"
	userSignIn := func(ip, pass string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", dirToken, strings.NewReader(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {pass}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", ip)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const attacker = "203.0.113.66"
	for _, id := range []struct {
		name string
		try  func(ip, pass string) int
		pass string
	}{
		{"admin user", func(ip, pass string) int { return from(t, ip, v2, admin, pass) }, adminPass},
		{"token", func(ip, pass string) int { return from(t, ip, v2, "ci-robot", pass) }, tokPass},
		{"directory user", userSignIn, alice.Password},
	} {
		for i := range 9 {
			if st := id.try(attacker, "wrong"); st != 401 {
				t.Fatalf("%s: guess %d: %d", id.name, i+1, st)
			}
		}
		if st := id.try(attacker, "wrong"); st != 429 {
			t.Errorf("%s: the tenth guess: %d; want 429", id.name, st)
		}
		if st := id.try(attacker, id.pass); st != 429 {
			t.Errorf("%s: the right password from the guesser's address: %d; want 429", id.name, st)
		}
		if st := id.try("198.51.100.1", id.pass); st != 200 {
			t.Errorf("%s: its owner from another address, while the guesser is blocked: %d; want 200", id.name, st)
		}
	}
	// The guesser comes back as soon as it may: each block is longer than the last.
	_, first := fromWithRetry(t, attacker, v2, admin, "wrong")
	waits := []int{first}
	for range 2 {
		clk.Add(time.Duration(waits[len(waits)-1]) * time.Second)
		var st, ra int
		for range 10 {
			st, ra = fromWithRetry(t, attacker, v2, admin, "wrong")
		}
		if st != 429 {
			t.Fatalf("ten more guesses: %d", st)
		}
		waits = append(waits, ra)
	}
	if !(waits[1] > waits[0] && waits[2] > waits[1]) {
		t.Errorf("lockouts of a guesser that comes back: %v seconds; want each longer", waits)
	}
	// Guessing from many addresses, 9 each (under the per-address limit): the identity's ceiling
	// (100) blocks new addresses, not the one its owner signed in from above.
	clk.Add(2 * time.Hour)
	for a := range 12 {
		for range 9 {
			from(t, fmt.Sprintf("192.0.2.%d", a+1), v2, admin, "wrong")
		}
	}
	if st := from(t, "198.51.100.99", v2, admin, adminPass); st != 429 {
		t.Errorf("the right password from a new address once the identity's ceiling is reached: %d; want 429", st)
	}
	if st := from(t, "198.51.100.1", v2, admin, adminPass); st != 200 {
		t.Errorf("the owner from its familiar address during a distributed attack: %d; want 200", st)
	}
}

// TestFamiliarAddressStaysFamiliar: an address its owner keeps signing in from stays familiar
// beyond the first mark's 30 days (a sign-in more than a day after the mark renews it), so a
// guesser reaching the identity's ceiling still spares it.
func TestFamiliarAddressStaysFamiliar(t *testing.T) {
	clk := registrytest.NewClock()
	s := registrytest.New(t, registrytest.Options{Now: clk.Now, Config: func(c *config.Config) {
		c.Network.TrustedProxies = []string{"127.0.0.1"}
		c.Auth.IdentityMaxFailures = 3
		c.Auth.KeyRotation = 90 * 24 * time.Hour // the clock moves a month: keep one signing key
	}})
	admin, pass := s.Admin(t)
	v2 := s.URL + "/v2/"
	if st := from(t, "198.51.100.1", v2, admin, pass); st != 200 {
		t.Fatalf("first sign-in: %d", st)
	}
	clk.Add(29 * 24 * time.Hour)
	if st := from(t, "198.51.100.1", v2, admin, pass); st != 200 {
		t.Fatalf("a sign-in 29 days later: %d", st)
	}
	clk.Add(2 * 24 * time.Hour) // 31 days after the first mark, 2 after the second
	for i := range 3 {
		from(t, fmt.Sprintf("192.0.2.%d", i+1), v2, admin, "wrong")
	}
	if st := from(t, "198.51.100.7", v2, admin, pass); st != 429 {
		t.Errorf("a new address at the identity's ceiling: %d; want 429", st)
	}
	if st := from(t, "198.51.100.1", v2, admin, pass); st != 200 {
		t.Errorf("the address its owner signed in from two days ago: %d; want 200", st)
	}
}

// TestThrottledDelay: a sign-in refused as throttled is answered only after auth.throttled_delay
// (a guesser that keeps asking while blocked is slowed); one that is not blocked is not delayed.
func TestThrottledDelay(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Network.TrustedProxies = []string{"127.0.0.1"}
		c.Auth.MaxFailures, c.Auth.ThrottledDelay = 2, 300*time.Millisecond
	}})
	admin, pass := s.Admin(t)
	v2 := s.URL + "/v2/"
	for range 2 {
		from(t, "203.0.113.5", v2, admin, "wrong")
	}
	start := time.Now()
	if st := from(t, "203.0.113.5", v2, admin, "wrong"); st != 429 || time.Since(start) < 300*time.Millisecond {
		t.Errorf("a blocked guess: %d after %s; want 429 after 300ms", st, time.Since(start))
	}
	start = time.Now()
	if st := from(t, "198.51.100.1", v2, admin, pass); st != 200 || time.Since(start) > 250*time.Millisecond {
		t.Errorf("the owner elsewhere: %d after %s; want 200 at once", st, time.Since(start))
	}
}

// TestEmptyCredentialsAreAnonymous: "Basic Og==" (an empty name and password, which the
// conformance suite sends when it has no credentials) is no sign-in: the caller is anonymous,
// nothing is counted against its address, and the owner at that address is never throttled by
// it.
func TestEmptyCredentialsAreAnonymous(t *testing.T) {
	s := registrytest.New(t, registrytest.Options{Config: func(c *config.Config) {
		c.Network.TrustedProxies = []string{"127.0.0.1"}
		c.Auth.MaxFailures, c.Auth.AddressMaxFailures = 2, 2
	}})
	admin, pass := s.Admin(t)
	tokenURL := s.URL + "/oauth2/token?service=" + url.QueryEscape(s.Host) + "&scope=repository:app:pull"
	for i := range 5 {
		if st := from(t, "203.0.113.9", tokenURL, "", ""); st != http.StatusOK {
			t.Fatalf("token request %d with empty credentials: %d; want 200 (an anonymous token)", i+1, st)
		}
		if st := from(t, "203.0.113.9", s.URL+"/v2/", "", ""); st != http.StatusUnauthorized {
			t.Fatalf("/v2/ %d with empty credentials: %d; want 401", i+1, st)
		}
	}
	if st := from(t, "203.0.113.9", s.URL+"/v2/", admin, pass); st != http.StatusOK {
		t.Errorf("the admin user from the same address afterwards: %d; want 200 (empty credentials counted as failures)", st)
	}
	s.SettleEvents(t)
	events, err := s.Meta().LoginEvents(t.Context(), store.EventFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Reason == "unknown_identity" {
			t.Errorf("empty credentials recorded as a failed sign-in: %+v", e)
		}
	}
}
