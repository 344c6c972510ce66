package bytesize

import (
	"flag"
	"io"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "64MiB", want: 64 << 20},
		{in: "64M", want: 64 << 20},
		{in: "512KiB", want: 512 << 10},
		{in: "512K", want: 512 << 10},
		{in: "2GiB", want: 2 << 30},
		{in: "1TiB", want: 1 << 40},
		{in: "100B", want: 100},
		{in: " 8 MiB ", want: 8 << 20},
		{in: "", bad: true},
		{in: "MiB", bad: true},
		{in: "-1", bad: true},
		{in: "1.5MiB", bad: true},
		{in: "10MB", bad: true},
		{in: "ten", bad: true},
		{in: "9999999999TiB", bad: true},
	} {
		got, err := Parse(tc.in)
		switch {
		case tc.bad && err == nil:
			t.Errorf("Parse(%q) = %d, want an error", tc.in, got)
		case !tc.bad && err != nil:
			t.Errorf("Parse(%q): %v", tc.in, err)
		case !tc.bad && got != tc.want:
			t.Errorf("Parse(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestFormatRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0"}, {1, "1"}, {1023, "1023"}, {1024, "1KiB"}, {50 << 20, "50MiB"}, {3 << 30, "3GiB"}, {1<<20 + 1, "1048577"}} {
		if got := Format(tc.n); got != tc.want {
			t.Errorf("Format(%d) = %q, want %q", tc.n, got, tc.want)
		}
		if back, err := Parse(Format(tc.n)); err != nil || back != tc.n {
			t.Errorf("Parse(Format(%d)) = %d, %v", tc.n, back, err)
		}
	}
}

func TestFlag(t *testing.T) {
	var f Flag
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&f, "max", "")
	if err := fs.Parse([]string{"--max", "50MiB"}); err != nil || f != 50<<20 {
		t.Fatalf("--max 50MiB: %d, %v", f, err)
	}
	if err := fs.Parse([]string{"--max", "fast"}); err == nil {
		t.Fatal("--max fast: no error")
	}
}
