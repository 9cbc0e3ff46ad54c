// Package seal encrypts what berth must be able to read back (signing keys, the admin user's
// passwords) with the key-encryption key: AES-256-GCM, a random 12-byte nonce, and additional
// data that binds each sealed value to the row it belongs to, so that a value copied into
// another row does not open.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// prefix starts every sealed value (version 1 of the format); a value without it was stored in
// clear by an older berth.
var prefix = []byte("berth-kek1:")

// ErrOpen is returned for a sealed value that does not open: another key-encryption key, or a
// value moved from another row or altered.
var ErrOpen = errors.New("seal: the value cannot be decrypted with this key-encryption key")

// Box seals and opens values with one key-encryption key. It is safe for concurrent use.
type Box struct{ aead cipher.AEAD }

// New makes a Box from a 32-byte key-encryption key.
func New(kek []byte) (*Box, error) {
	if len(kek) != 32 {
		return nil, fmt.Errorf("seal: the key-encryption key has %d bytes, not 32", len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Sealed reports whether b is in the sealed format.
func Sealed(b []byte) bool { return bytes.HasPrefix(b, prefix) }

// Seal encrypts plain, bound to ad (the row it is stored in).
func (b *Box) Seal(plain, ad []byte) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	out := append(bytes.Clone(prefix), nonce...)
	return b.aead.Seal(out, nonce, plain, ad), nil
}

// Open decrypts a value Seal made with the same ad; anything else is ErrOpen.
func (b *Box) Open(sealed, ad []byte) ([]byte, error) {
	if !Sealed(sealed) {
		return nil, ErrOpen
	}
	rest := sealed[len(prefix):]
	n := b.aead.NonceSize()
	if len(rest) < n+b.aead.Overhead() {
		return nil, ErrOpen
	}
	plain, err := b.aead.Open(nil, rest[:n], rest[n:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
