// Package numfmt formats numbers for texts that people read.
package numfmt

import "strconv"

// AppendGrouped appends n in decimal with a comma between groups of three
// digits: 1234567 -> "1,234,567", -2107 -> "-2,107".
func AppendGrouped(b []byte, n int64) []byte {
	var d [20]byte
	digits := strconv.AppendInt(d[:0], n, 10)
	if n < 0 {
		b, digits = append(b, '-'), digits[1:]
	}
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, c)
	}
	return b
}

// Grouped is AppendGrouped as a string.
func Grouped(n int64) string { return string(AppendGrouped(nil, n)) }
