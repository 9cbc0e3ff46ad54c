package distribution

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/blob"
	"github.com/berth-registry/berth/internal/httperr"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/store"
)

func digestError(err error) error {
	return httperr.New(oci.CodeDigestInvalid, "%v", err)
}

// redirectTTL is how long a presigned blob URL stays valid.
const redirectTTL = 20 * time.Minute

func (h *Handler) getBlob(w http.ResponseWriter, r *http.Request, req *request) error {
	ctx := r.Context()
	d, err := oci.ParseDigest(req.ref)
	if err != nil {
		return digestError(err)
	}
	size, err := h.meta.Blob(ctx, req.reg.ID, req.name, d)
	if errors.Is(err, store.ErrNotFound) {
		return httperr.New(oci.CodeBlobUnknown, "blob %s is not in repository %s", d, req.name).WithDetail(map[string]string{"digest": string(d)})
	}
	if err != nil {
		return err
	}
	hdr := w.Header()
	hdr.Set("Docker-Content-Digest", string(d))
	hdr.Set("Accept-Ranges", "bytes")
	hdr.Set("Content-Type", oci.MediaTypeOctetStream)
	hdr.Set("ETag", `"`+string(d)+`"`)
	hdr.Set("Cache-Control", "max-age=31536000")

	start, end, partial, err := parseRange(r.Header.Get("Range"), size)
	if err != nil {
		return httperr.New(oci.CodeRangeInvalid, "%v", err).WithHeader("Content-Range", fmt.Sprintf("bytes */%d", size))
	}
	length := end - start
	if r.Method == http.MethodHead {
		hdr.Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if rd, ok := h.blobs.(blob.Redirector); ok {
		// The storage serves the bytes itself (a presigned S3 URL): the client follows the
		// redirect, Range header included, and berth is out of the data path.
		u, err := rd.URL(ctx, d, redirectTTL)
		if err != nil {
			return err
		}
		if u != "" {
			hdr.Del("Accept-Ranges")
			hdr.Set("Location", u)
			w.WriteHeader(http.StatusTemporaryRedirect)
			return nil
		}
	}
	rc, err := h.blobs.Open(ctx, d, start)
	if errors.Is(err, blob.ErrNotFound) {
		h.log.WarnContext(ctx, "blob linked in metadata but missing from storage", "digest", d, "repository", req.name)
		return httperr.New(oci.CodeBlobUnknown, "blob %s is missing from storage", d)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	hdr.Set("Content-Length", strconv.FormatInt(length, 10))
	if partial {
		hdr.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, size))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	if _, err := copyBuffer(w, io.LimitReader(rc, length)); err != nil {
		// Headers are out; all that is left is to stop the response.
		h.log.DebugContext(ctx, "blob download ended early", "digest", d, "err", err)
	}
	return nil
}

// parseRange reads a single "bytes=" range for a blob of size bytes; [start, end) is what to
// send. A header berth does not understand (several ranges, another unit) is ignored, as RFC
// 9110 allows; one that asks for bytes past the end is an error.
func parseRange(hdr string, size int64) (start, end int64, partial bool, err error) {
	if hdr == "" {
		return 0, size, false, nil
	}
	spec, ok := strings.CutPrefix(hdr, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, 0, false, fmt.Errorf("range %q is not of the form bytes=start-end", truncate(hdr))
	}
	if first == "" { // suffix: the last N bytes
		n, perr := strconv.ParseInt(last, 10, 64)
		if perr != nil || n <= 0 {
			return 0, 0, false, fmt.Errorf("range %q is not valid", truncate(hdr))
		}
		if n > size {
			n = size
		}
		if size == 0 {
			return 0, 0, false, fmt.Errorf("range %q cannot be satisfied by an empty blob", truncate(hdr))
		}
		return size - n, size, true, nil
	}
	start, perr := strconv.ParseInt(first, 10, 64)
	if perr != nil || start < 0 {
		return 0, 0, false, fmt.Errorf("range %q is not valid", truncate(hdr))
	}
	if start >= size {
		return 0, 0, false, fmt.Errorf("range %q starts at or past the end of the %d-byte blob", truncate(hdr), size)
	}
	end = size
	if last != "" {
		e, perr := strconv.ParseInt(last, 10, 64)
		if perr != nil || e < start {
			return 0, 0, false, fmt.Errorf("range %q is not valid", truncate(hdr))
		}
		if e+1 < size {
			end = e + 1
		}
	}
	return start, end, true, nil
}

func (h *Handler) deleteBlob(w http.ResponseWriter, r *http.Request, req *request) error {
	d, err := oci.ParseDigest(req.ref)
	if err != nil {
		return digestError(err)
	}
	err = h.meta.UnlinkBlob(r.Context(), req.reg.ID, req.name, d)
	if errors.Is(err, store.ErrNotFound) {
		return httperr.New(oci.CodeBlobUnknown, "blob %s is not in repository %s", d, req.name)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// copyBuffer copies with a large buffer: fewer syscalls for multi-megabyte layers.
func copyBuffer(dst io.Writer, src io.Reader) (int64, error) {
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	return io.CopyBuffer(dst, src, *buf)
}
