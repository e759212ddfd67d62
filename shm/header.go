package shm

import (
	"fmt"
	"unsafe"
)

// LineSize is the padding unit of every record written by one process and read
// by others: two 64-byte cache lines, because x86's adjacent-line prefetcher
// moves lines in pairs and would otherwise make neighbours share traffic.
const LineSize = 128

// Magic opens every mplock region ("MPLK" little-endian).
const Magic uint32 = 0x4b4c504d

// Layout says which record layout follows the header.
type Layout uint32

// Layouts known to this binary.
const (
	LayoutBank  Layout = 1 // the bank: account, lock words, worker slots
	LayoutMutex Layout = 2 // the mutual-exclusion checker (mplock mutex)
)

func (l Layout) String() string {
	switch l {
	case LayoutBank:
		return "bank"
	case LayoutMutex:
		return "mutex"
	}
	return fmt.Sprintf("layout(%d)", uint32(l))
}

// Header is the first record of every region. It is written once by the
// creator before any other process maps the region and never changes after.
type Header struct {
	Magic   uint32
	Version uint32 // version of the layout named by Layout
	Layout  Layout
	Workers uint32 // number of worker slots
	Size    uint64 // bytes the layout occupies
	_       [LineSize - 24]byte
}

var (
	_ [LineSize - unsafe.Sizeof(Header{})]byte // Header fills exactly one line
	_ [unsafe.Sizeof(Header{}) - LineSize]byte
)

// check validates a header against the layout and version a reader expects.
func (h *Header) check(layout Layout, version uint32, regionSize int) error {
	switch {
	case h.Magic != Magic:
		return fmt.Errorf("%w: magic %#x, want %#x (not an mplock region)", ErrLayout, h.Magic, Magic)
	case h.Layout != layout:
		return fmt.Errorf("%w: layout %v, want %v", ErrLayout, h.Layout, layout)
	case h.Version != version:
		return fmt.Errorf("%w: %v layout version %d, this binary knows %d", ErrLayout, layout, h.Version, version)
	case h.Size > uint64(regionSize):
		return fmt.Errorf("%w: header says %d bytes, region has %d", ErrLayout, h.Size, regionSize)
	}
	return nil
}
