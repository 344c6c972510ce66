package token

import (
	"errors"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	tok := New()
	got, err := ParseOperator(tok.Operator())
	if err != nil || got != tok {
		t.Fatalf("ParseOperator = %+v, %v; want %+v", got, err, tok)
	}
	tok.CAHash = strings.Repeat("ab", 32)
	got, err = ParseJoin(tok.Join())
	if err != nil || got != tok {
		t.Fatalf("ParseJoin = %+v, %v; want %+v", got, err, tok)
	}
	if !got.Matches(tok.Hash()) || New().Matches(tok.Hash()) {
		t.Error("Matches accepts another secret or refuses its own")
	}
	if ID(tok.Join()) != tok.ID || ID("nope") != "" {
		t.Error("ID")
	}
}

func TestParseRefuses(t *testing.T) {
	good := New()
	good.CAHash = strings.Repeat("0", 64)
	tests := []struct {
		name, in string
		join     bool
	}{
		{"empty", "", false},
		{"join as operator", good.Join(), false},
		{"operator as join", good.Operator(), true},
		{"short id", "cutover.abc." + good.Secret, false},
		{"upper hex id", "cutover." + strings.ToUpper(good.ID) + "." + good.Secret, false},
		{"short secret", "cutover." + good.ID + ".abc", false},
		{"extra part", good.Operator() + ".x", false},
		{"bad ca hash", "cutoverjoin_" + good.ID + "." + good.Secret + "_zz", true},
		{"bad secret alphabet", "cutover." + good.ID + "." + strings.Repeat("!", 43), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.join {
				_, err = ParseJoin(tt.in)
			} else {
				_, err = ParseOperator(tt.in)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if strings.Contains(err.Error(), good.Secret) {
				t.Errorf("error holds the secret: %v", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	tok := New()
	tok.CAHash = strings.Repeat("a", 64)
	f.Add(tok.Operator())
	f.Add(tok.Join())
	f.Add("cutover..")
	f.Fuzz(func(t *testing.T, s string) {
		if got, err := ParseOperator(s); err == nil {
			if again, err := ParseOperator(got.Operator()); err != nil || again != got {
				t.Fatalf("operator token %q does not round-trip", s)
			}
		}
		if got, err := ParseJoin(s); err == nil {
			if again, err := ParseJoin(got.Join()); err != nil || again != got {
				t.Fatalf("join token %q does not round-trip", s)
			}
		}
	})
}
