package store_test

import (
	"regexp"
	"testing"

	"github.com/berth-registry/berth/internal/store"
)

// TestDeliveryIDs: GUID-shaped version 7 UUIDs, increasing in the order made (also within one
// millisecond, where the outbox orders events and deliveries by them), never the same twice.
func TestDeliveryIDs(t *testing.T) {
	shape := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	prev := ""
	for range 20_000 { // several per millisecond, past the counter's 4 096
		id := store.NewDeliveryID()
		if !shape.MatchString(id) {
			t.Fatalf("%q is not a version 7 UUID", id)
		}
		if id <= prev || seen[id] {
			t.Fatalf("%q made after %q does not sort after it", id, prev)
		}
		seen[id], prev = true, id
	}
}
