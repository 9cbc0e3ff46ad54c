package seal_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/berth-registry/berth/internal/seal"
)

func TestSealOpen(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	box, err := seal.New(k1)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := seal.New(k2)
	s, err := box.Seal([]byte("secret value"), []byte("admin:1:password"))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := box.Seal([]byte("secret value"), []byte("admin:1:password"))
	if bytes.Equal(s, again) {
		t.Error("two seals of one value are equal: the nonce is reused")
	}
	if !seal.Sealed(s) || bytes.Contains(s, []byte("secret value")) {
		t.Fatalf("sealed value %q", s)
	}
	if got, err := box.Open(s, []byte("admin:1:password")); err != nil || string(got) != "secret value" {
		t.Fatalf("open: %q, %v", got, err)
	}
	flipped := bytes.Clone(s)
	flipped[len(flipped)-1] ^= 1
	for _, c := range []struct {
		name string
		box  *seal.Box
		val  []byte
		ad   string
	}{
		{"another row", box, s, "admin:2:password"},
		{"another key", other, s, "admin:1:password"},
		{"altered", box, flipped, "admin:1:password"},
		{"clear", box, []byte("secret value"), "admin:1:password"},
		{"truncated", box, s[:20], "admin:1:password"},
	} {
		if _, err := c.box.Open(c.val, []byte(c.ad)); !errors.Is(err, seal.ErrOpen) {
			t.Errorf("%s: %v, want ErrOpen", c.name, err)
		}
	}
	if _, err := seal.New(k1[:16]); err == nil {
		t.Error("a 16-byte key was taken")
	}
}
