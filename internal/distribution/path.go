package distribution

import (
	"errors"
	"strings"
)

// kind is the family of /v2/ endpoint a path names.
type kind int

const (
	kindBase kind = iota + 1
	kindCatalog
	kindTags
	kindManifest
	kindBlob
	kindUploads // .../blobs/uploads/ (start an upload)
	kindUpload  // .../blobs/uploads/<id>
	kindReferrers
)

// route is a parsed /v2/ path. Name and Ref are not yet validated.
type route struct {
	kind kind
	name string
	ref  string // tag, digest or upload id
}

var errNotV2 = errors.New("not a /v2/ path")

// maxPathLength bounds the paths berth parses; a name is at most 255 characters and a digest
// 135, so anything longer is not a valid request.
const maxPathLength = 1024

// parseV2Path splits a /v2/ path. Repository names contain slashes, so the path is read from its
// end: the last one or two elements say which endpoint it is and the rest is the name.
func parseV2Path(p string) (route, error) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		if p == "/v2" {
			return route{kind: kindBase}, nil
		}
		return route{}, errNotV2
	}
	if len(p) > maxPathLength {
		return route{}, errNotV2
	}
	switch rest {
	case "":
		return route{kind: kindBase}, nil
	case "_catalog":
		return route{kind: kindCatalog}, nil
	}
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok && name != "" {
		return route{kind: kindTags, name: name}, nil
	}
	if name, ok := strings.CutSuffix(rest, "/blobs/uploads/"); ok && name != "" {
		return route{kind: kindUploads, name: name}, nil
	}
	if name, ok := strings.CutSuffix(rest, "/blobs/uploads"); ok && name != "" {
		return route{kind: kindUploads, name: name}, nil
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 || i == len(rest)-1 {
		return route{}, errNotV2
	}
	head, ref := rest[:i], rest[i+1:]
	j := strings.LastIndexByte(head, '/')
	if j <= 0 {
		return route{}, errNotV2
	}
	name, elem := head[:j], head[j+1:]
	switch elem {
	case "manifests":
		return route{kind: kindManifest, name: name, ref: ref}, nil
	case "blobs":
		return route{kind: kindBlob, name: name, ref: ref}, nil
	case "referrers":
		return route{kind: kindReferrers, name: name, ref: ref}, nil
	case "uploads":
		if n, ok := strings.CutSuffix(name, "/blobs"); ok && n != "" {
			return route{kind: kindUpload, name: n, ref: ref}, nil
		}
	}
	return route{}, errNotV2
}
