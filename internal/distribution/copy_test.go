package distribution

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

type failingWriter struct {
	bytes.Buffer
	after int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.Len()+len(p) > w.after {
		n := w.after - w.Len()
		w.Buffer.Write(p[:n])
		return n, errors.New("disk full")
	}
	return w.Buffer.Write(p)
}

// shortWriter takes half of each write and reports no error, as a broken writer might.
type shortWriter struct{ bytes.Buffer }

func (w *shortWriter) Write(p []byte) (int, error) { return w.Buffer.Write(p[:len(p)/2]) }

// TestCopyHashing: what is written and what is hashed stay the same bytes, whatever the
// reader returns, and a storage failure is told apart from a client's.
func TestCopyHashing(t *testing.T) {
	data := make([]byte, 3<<20+12345) // several buffers and a partial one
	for i := range data {
		data[i] = byte(i * 7)
	}
	cut := errors.New("connection reset")
	tests := []struct {
		name     string
		src      io.Reader
		dst      io.Writer
		want     int64
		wantErr  error
		storeErr bool
	}{
		{"whole", bytes.NewReader(data), &bytes.Buffer{}, int64(len(data)), nil, false},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(data[:70000])), &bytes.Buffer{}, 70000, nil, false},
		{"data then EOF together", iotest.DataErrReader(bytes.NewReader(data)), &bytes.Buffer{}, int64(len(data)), nil, false},
		{"cut off by the client", io.MultiReader(bytes.NewReader(data[:1<<20+5]), iotest.ErrReader(cut)), &bytes.Buffer{}, 1<<20 + 5, cut, false},
		{"unexpected EOF is an error", io.MultiReader(bytes.NewReader(data[:100]), iotest.ErrReader(io.ErrUnexpectedEOF)), &bytes.Buffer{}, 100, io.ErrUnexpectedEOF, false},
		{"disk full", bytes.NewReader(data), &failingWriter{after: 300 << 10}, 256 << 10, errStorageWrite, true}, // the chunks written whole
		{"short write", bytes.NewReader(data), &shortWriter{}, 0, io.ErrShortWrite, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := sha256.New()
			n, err := copyHashing(tt.dst, h, tt.src)
			if n != tt.want || !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("copyHashing = %d, %v; want %d, %v", n, err, tt.want, tt.wantErr)
			}
			if tt.storeErr {
				return
			}
			written := tt.dst.(*bytes.Buffer).Bytes()
			if int64(len(written)) != n || !bytes.Equal(written, data[:n]) {
				t.Fatalf("wrote %d bytes, want the first %d", len(written), n)
			}
			if want := sha256.Sum256(data[:n]); !bytes.Equal(h.Sum(nil), want[:]) {
				t.Error("the hash is not the hash of what was written")
			}
		})
	}
}
