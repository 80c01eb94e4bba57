package inventory

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrTolerance is matched (errors.Is) by every error of ParseTolerance.
var ErrTolerance = errors.New("bad tolerance")

// Tolerance is how many hosts of a step may fail before the step as a whole
// fails: either an absolute Count ("3") or a Percent of the step's hosts
// ("10%"). At most one of the two is non-zero; the zero value tolerates no
// failure.
type Tolerance struct {
	Count   int
	Percent float64
}

// ParseTolerance parses a count ("3") or a percentage from 0 to 100
// ("10%", "12.5%").
func ParseTolerance(s string) (Tolerance, error) {
	t := strings.TrimSpace(s)
	if num, ok := strings.CutSuffix(t, "%"); ok {
		if !isDecimal(num) {
			return Tolerance{}, fmt.Errorf("%w %q: want a count such as \"3\" or a percentage such as \"10%%\"", ErrTolerance, s)
		}
		p, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return Tolerance{}, fmt.Errorf("%w %q: %w", ErrTolerance, s, err)
		}
		if p > 100 {
			return Tolerance{}, fmt.Errorf("%w %q: percentage above 100%%", ErrTolerance, s)
		}
		return Tolerance{Percent: p}, nil
	}
	if !isDigits(t) {
		return Tolerance{}, fmt.Errorf("%w %q: want a count such as \"3\" or a percentage such as \"10%%\"", ErrTolerance, s)
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return Tolerance{}, fmt.Errorf("%w %q: %w", ErrTolerance, s, err)
	}
	return Tolerance{Count: n}, nil
}

// Allowed is how many of total hosts may fail. A percentage is rounded
// down (10% of 9 hosts is 0), and the result never exceeds total.
func (t Tolerance) Allowed(total int) int {
	if total <= 0 {
		return 0
	}
	n := t.Count
	if t.Percent > 0 {
		// The small epsilon keeps 10% of 30 at 3 despite float rounding.
		n = int(math.Floor(float64(total)*t.Percent/100 + 1e-9))
	}
	return max(0, min(n, total))
}

// String renders the tolerance the way ParseTolerance reads it.
func (t Tolerance) String() string {
	if t.Percent > 0 {
		return strconv.FormatFloat(t.Percent, 'f', -1, 64) + "%"
	}
	return strconv.Itoa(t.Count)
}

// isDigits reports whether s is a non-empty run of ASCII digits.
func isDigits(s string) bool {
	if s == "" || len(s) > maxDigits {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isDecimal reports whether s is digits with an optional ".digits" part.
func isDecimal(s string) bool {
	whole, frac, hasFrac := strings.Cut(s, ".")
	if !isDigits(whole) {
		return false
	}
	return !hasFrac || isDigits(frac)
}
