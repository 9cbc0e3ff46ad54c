package oci

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// Algorithm is a digest algorithm that berth can verify.
type Algorithm string

// The algorithms of the OCI image spec that berth verifies.
const (
	SHA256 Algorithm = "sha256"
	SHA512 Algorithm = "sha512"
)

// ErrDigestInvalid reports a digest that does not follow the OCI grammar or uses an unsupported
// algorithm.
var ErrDigestInvalid = errors.New("invalid digest")

// hexLen is the number of lower-case hex characters of each algorithm's encoded form.
var hexLen = map[Algorithm]int{SHA256: 64, SHA512: 128}

// Available reports whether berth can compute the algorithm.
func (a Algorithm) Available() bool { _, ok := hexLen[a]; return ok }

// New returns a fresh hash for the algorithm; it panics for an algorithm that is not Available.
func (a Algorithm) New() hash.Hash {
	switch a {
	case SHA256:
		return sha256.New()
	case SHA512:
		return sha512.New()
	}
	panic("oci: unavailable digest algorithm " + string(a))
}

// Digest is a validated content digest such as "sha256:e3b0…". The zero value is not valid.
type Digest string

// ParseDigest validates s as a digest of an algorithm berth can verify.
func ParseDigest(s string) (Digest, error) {
	alg, enc, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("%w: %q has no algorithm prefix", ErrDigestInvalid, truncate(s))
	}
	a := Algorithm(alg)
	n, known := hexLen[a]
	if !known {
		if !validAlgorithmName(alg) {
			return "", fmt.Errorf("%w: %q is not an algorithm name", ErrDigestInvalid, truncate(alg))
		}
		return "", fmt.Errorf("%w: algorithm %q is not supported (use sha256 or sha512)", ErrDigestInvalid, truncate(alg))
	}
	if len(enc) != n {
		return "", fmt.Errorf("%w: %s digest must have %d hex characters, got %d", ErrDigestInvalid, alg, n, len(enc))
	}
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("%w: %s digest must be lower-case hex", ErrDigestInvalid, alg)
		}
	}
	return Digest(s), nil
}

// FromBytes returns the digest of b under algorithm a.
func FromBytes(a Algorithm, b []byte) Digest {
	h := a.New()
	h.Write(b)
	return NewDigest(a, h)
}

// NewDigest returns the digest of what h has summed so far.
func NewDigest(a Algorithm, h hash.Hash) Digest {
	return Digest(fmt.Sprintf("%s:%x", a, h.Sum(nil)))
}

// Algorithm returns the digest's algorithm.
func (d Digest) Algorithm() Algorithm {
	alg, _, _ := strings.Cut(string(d), ":")
	return Algorithm(alg)
}

// Encoded returns the hex part of the digest.
func (d Digest) Encoded() string {
	_, enc, _ := strings.Cut(string(d), ":")
	return enc
}

func (d Digest) String() string { return string(d) }

// validAlgorithmName follows the image spec: algorithm := algorithm-component (algorithm-separator
// algorithm-component)*, components [a-z0-9]+, separators [+._-].
func validAlgorithmName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	prevSep := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			prevSep = false
		case c == '+' || c == '.' || c == '_' || c == '-':
			if prevSep {
				return false
			}
			prevSep = true
		default:
			return false
		}
	}
	return !prevSep
}

// truncate keeps error messages bounded when they quote client input.
func truncate(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
