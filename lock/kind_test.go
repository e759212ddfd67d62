package lock

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseKinds(t *testing.T) {
	tests := []struct {
		in   string
		want []Kind
		err  string
	}{
		{"sem", []Kind{Sem}, ""},
		{"flock, sem,flock", []Kind{Flock, Sem}, ""},
		{"all", Kinds(), ""},
		{"", nil, "no lock kind"},
		{"mutex", nil, `unknown lock kind "mutex" (kinds: none, flock, fcntl, sem, sysv, spin, atomic)`},
	}
	for _, tt := range tests {
		got, err := ParseKinds(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseKinds(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseKinds(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestEveryKindHasNameAndDescription(t *testing.T) {
	for _, k := range Kinds() {
		if k.Description() == "" || strings.HasPrefix(k.String(), "kind(") {
			t.Errorf("kind %d lacks a name or description", k)
		}
		back, err := ParseKind(k.String())
		if err != nil || back != k {
			t.Errorf("ParseKind(%q) = %v, %v", k, back, err)
		}
	}
}
