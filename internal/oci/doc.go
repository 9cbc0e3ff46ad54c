// Package oci holds the vocabulary of the OCI distribution and image specs that berth needs:
// digests, repository names and tags, media types, error codes and manifest checks. It depends on
// the standard library only, so every other package can use it and it can be fuzzed on its own.
package oci
