package oauth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/registrytest"
)

// TestServicePrincipalThrottledEverywhere: failures of a service principal on /v2/ and on the
// directory endpoint, from one address, count together (one identity, whichever door), so that
// spreading guesses over both does not double the attempts.
func TestServicePrincipalThrottledEverywhere(t *testing.T) {
	s := registrytest.New(t, behindProxy(4, 100))
	var sp struct{ AppID, Password string }
	s.Mgmt(t, "POST", "/mgmt/v1/servicePrincipals", map[string]any{"displayName": "robot"}, &sp)
	for i := range 2 {
		if st := from(t, "198.51.100.1", s.URL+"/v2/", sp.AppID, "wrong"); st != 401 {
			t.Fatalf("failure %d on /v2/: %d", i+1, st)
		}
	}
	for i := range 2 {
		req, _ := http.NewRequest("POST", s.URL+"/mgmt/v1/token",
			strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.AppID}, "client_secret": {"wrong"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", "198.51.100.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := []int{401, 429}[i]; resp.StatusCode != want {
			t.Fatalf("failure %d on the directory endpoint: %d; want %d", i+3, resp.StatusCode, want)
		}
	}
	if st := from(t, "198.51.100.1", s.URL+"/v2/", sp.AppID, sp.Password); st != 429 {
		t.Errorf("the right secret on /v2/ after 4 failures over both doors: %d; want 429", st)
	}
}
