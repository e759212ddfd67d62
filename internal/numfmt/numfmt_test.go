package numfmt

import (
	"math"
	"testing"
)

func TestGrouped(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0"}, {7, "7"}, {999, "999"}, {1000, "1,000"}, {2107, "2,107"}, {123456, "123,456"},
		{1234567, "1,234,567"}, {-5, "-5"}, {-2107, "-2,107"}, {-123456, "-123,456"},
		{math.MaxInt64, "9,223,372,036,854,775,807"}, {math.MinInt64, "-9,223,372,036,854,775,808"},
	} {
		if got := Grouped(tc.n); got != tc.want {
			t.Errorf("Grouped(%d) = %q, want %q", tc.n, got, tc.want)
		}
		if got := string(AppendGrouped([]byte("x="), tc.n)); got != "x="+tc.want {
			t.Errorf("AppendGrouped(x=, %d) = %q", tc.n, got)
		}
	}
}
