package oci

import (
	"errors"
	"fmt"
)

// MaxNameLength bounds a repository name. The distribution spec lets registries limit the name;
// 255 characters in all is what Distribution and most registries enforce.
const MaxNameLength = 255

// MaxTagLength is the spec's limit on a tag: 128 characters.
const MaxTagLength = 128

// Errors returned by ValidateName and ValidateTag.
var (
	ErrNameInvalid = errors.New("invalid repository name")
	ErrTagInvalid  = errors.New("invalid tag")
)

// ValidateName checks a repository name against the distribution spec grammar:
//
//	[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: the name is empty", ErrNameInvalid)
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("%w: the name is %d characters long; at most %d are allowed", ErrNameInvalid, len(name), MaxNameLength)
	}
	start := 0
	for i := 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '/' {
			if err := validateComponent(name[start:i]); err != nil {
				return fmt.Errorf("%w: %q: %s", ErrNameInvalid, truncate(name), err.Error())
			}
			start = i + 1
		}
	}
	return nil
}

type componentError string

func (e componentError) Error() string { return string(e) }

// validateComponent checks one path component: alphanumeric runs joined by '.', '_', '__' or
// one or more '-'.
func validateComponent(c string) error {
	if c == "" {
		return componentError("empty path component")
	}
	isAlnum := func(b byte) bool { return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' }
	if !isAlnum(c[0]) || !isAlnum(c[len(c)-1]) {
		return componentError("each path component must start and end with a lower-case letter or digit")
	}
	for i := 0; i < len(c); {
		if isAlnum(c[i]) {
			i++
			continue
		}
		j := i
		for j < len(c) && !isAlnum(c[j]) {
			j++
		}
		sep := c[i:j]
		switch {
		case sep == "." || sep == "_" || sep == "__":
		case allDashes(sep):
		default:
			return componentError(fmt.Sprintf("separator %q is not allowed (use '.', '_', '__' or dashes; letters must be lower case)", truncate(sep)))
		}
		i = j
	}
	return nil
}

func allDashes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '-' {
			return false
		}
	}
	return s != ""
}

// ValidateTag checks a tag against [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func ValidateTag(tag string) error {
	if tag == "" {
		return fmt.Errorf("%w: the tag is empty", ErrTagInvalid)
	}
	if len(tag) > MaxTagLength {
		return fmt.Errorf("%w: the tag is %d characters long; at most %d are allowed", ErrTagInvalid, len(tag), MaxTagLength)
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' ||
			(i > 0 && (c == '.' || c == '-'))
		if !ok {
			return fmt.Errorf("%w: %q: tags use letters, digits, '_', and after the first character '.' and '-'", ErrTagInvalid, truncate(tag))
		}
	}
	return nil
}

// Reference is the last path element of a manifest URL: a tag or a digest.
type Reference struct {
	Tag    string
	Digest Digest
}

// ParseReference parses a manifest reference. Anything with a ':' is taken as a digest.
func ParseReference(s string) (Reference, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			d, err := ParseDigest(s)
			if err != nil {
				return Reference{}, err
			}
			return Reference{Digest: d}, nil
		}
	}
	if err := ValidateTag(s); err != nil {
		return Reference{}, err
	}
	return Reference{Tag: s}, nil
}

func (r Reference) String() string {
	if r.Digest != "" {
		return string(r.Digest)
	}
	return r.Tag
}
