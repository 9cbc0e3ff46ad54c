package fsblob

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteBack asks the kernel to start writing [off, off+n) of f to the disk, without
// waiting (sync_file_range with SYNC_FILE_RANGE_WRITE). It is a hint: durability still comes
// from fsync, and an error only means the hint was not taken.
func startWriteBack(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
