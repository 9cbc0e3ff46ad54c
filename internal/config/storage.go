package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Storage is where blobs are kept, as the storage setting names it: a folder (FSPath) or an S3
// bucket (S3).
type Storage struct {
	FSPath string
	S3     *S3
}

// S3 names a bucket and how to reach it.
type S3 struct {
	Endpoint  string // host[:port]; empty means s3.amazonaws.com
	Region    string
	Bucket    string
	Prefix    string // key prefix, e.g. "berth/"
	Insecure  bool   // plain HTTP (a MinIO on loopback)
	PathStyle bool   // bucket in the path, not the host name
	// CredentialsFile is an AWS shared credentials file; empty means the environment
	// (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, then MINIO_ROOT_USER/MINIO_ROOT_PASSWORD).
	CredentialsFile string
	Profile         string
	// Redirect makes blob downloads redirects to presigned URLs.
	Redirect bool
	// CreateBucket creates the bucket when it does not exist (else that is an error).
	CreateBucket bool
	// PayloadSigning signs every uploaded byte (SigV4's streaming signature: a SHA-256 of the
	// data on each side) over plain HTTP, instead of a CRC32C trailer the store checks; for
	// stores that refuse trailing checksums. Over HTTPS payloads are never signed.
	PayloadSigning bool
	// CacheSize bounds the blobs each replica keeps on its own disk (DATA_DIR/cache), so that
	// pulls of what was pushed or pulled recently read a local file; 0 turns the cache off.
	CacheSize int64
}

// DefaultS3CacheSize is the cache_size of a storage URL that does not set it.
const DefaultS3CacheSize = 1 << 30

// ParseStorage reads the storage setting: fs:PATH, or
// s3://BUCKET[/PREFIX]?endpoint=HOST:PORT&region=R&insecure=true&path_style=true&
// credentials_file=PATH&profile=P&redirect=true&create_bucket=true&payload_signing=true&
// cache_size=SIZE. It is the one place the setting is read (Validate checks it, the server opens
// what it names).
func ParseStorage(spec string) (Storage, error) {
	switch {
	case strings.HasPrefix(spec, "fs:"):
		p := strings.TrimPrefix(spec, "fs:")
		if p == "" {
			return Storage{}, errors.New("fs: needs a path")
		}
		return Storage{FSPath: p}, nil
	case strings.HasPrefix(spec, "s3://"):
		s3, err := parseS3(spec)
		if err != nil {
			return Storage{}, err
		}
		return Storage{S3: &s3}, nil
	}
	return Storage{}, fmt.Errorf("%q: use fs:PATH or s3://BUCKET[/PREFIX]?endpoint=HOST:PORT", spec)
}

func parseS3(raw string) (S3, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return S3{}, fmt.Errorf("%q is not s3://BUCKET[/PREFIX]?endpoint=…", raw)
	}
	if u.User != nil {
		return S3{}, errors.New("credentials do not go in the storage URL: use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or credentials_file=")
	}
	c := S3{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	if c.Prefix != "" {
		c.Prefix += "/"
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "insecure", "path_style", "credentials_file", "profile", "redirect", "create_bucket", "payload_signing", "cache_size":
		default:
			return S3{}, fmt.Errorf("unknown storage URL parameter %q", k)
		}
	}
	c.Endpoint, c.Region, c.CredentialsFile, c.Profile = q.Get("endpoint"), q.Get("region"), q.Get("credentials_file"), q.Get("profile")
	for k, dst := range map[string]*bool{"insecure": &c.Insecure, "path_style": &c.PathStyle, "redirect": &c.Redirect, "create_bucket": &c.CreateBucket,
		"payload_signing": &c.PayloadSigning} {
		if v := q.Get(k); v != "" {
			if *dst, err = strconv.ParseBool(v); err != nil {
				return S3{}, fmt.Errorf("%s: %q is not true or false", k, v)
			}
		}
	}
	c.CacheSize = DefaultS3CacheSize
	if v := q.Get("cache_size"); v != "" {
		n, err := ParseSize(v)
		if err != nil {
			return S3{}, fmt.Errorf("cache_size: %w", err)
		}
		c.CacheSize = int64(n)
	}
	return c, nil
}
