package oauth_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/registrytest"
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
