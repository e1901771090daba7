package message

import (
	"fmt"
	"strconv"
	"strings"
)

// LSN is a Postgres write-ahead-log position.
type LSN uint64

// String formats the LSN as Postgres does: "16/B374D848".
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l))
}

// ParseLSN parses the "XXX/XXX" form of an LSN.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("message: parse LSN %q: want XXX/XXX", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("message: parse LSN %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("message: parse LSN %q: %w", s, err)
	}
	return LSN(h<<32 | l), nil
}
