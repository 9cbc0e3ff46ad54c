package portal

import (
	"net/http"
	"testing"

	"github.com/berth-registry/berth/internal/seal"
	"github.com/berth-registry/berth/internal/store"
)

// TestNewNeedsItsParts: a portal without the API, the store or the key-encryption key is refused
// at start, not at the first sign-in.
func TestNewNeedsItsParts(t *testing.T) {
	box, err := seal.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	api, st := http.NotFoundHandler(), &store.Store{}
	for name, d := range map[string]Deps{
		"no API":   {Store: st, Box: box},
		"no store": {API: api, Box: box},
		"no box":   {API: api, Store: st},
	} {
		if _, err := New(d); err == nil {
			t.Errorf("%s: started", name)
		}
	}
	if _, err := New(Deps{API: api, Store: st, Box: box}); err != nil {
		t.Errorf("with every part: %v", err)
	}
}
