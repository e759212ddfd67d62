package dmutex

import (
	"bytes"
	"errors"
	"testing"
)

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range []Message{
		{Kind: Request, From: 3, TS: 17},
		{Kind: Reply, From: 0, TS: 1},
		{Kind: Grant, From: ServerID, TS: 18446744073709551615},
		{Kind: ReleaseLock, From: 63, TS: 0},
		{Kind: Token, From: 14, TS: 99},
		{Kind: Ping, From: 0, TS: 5},
		{Kind: Pong, From: 1, TS: 5},
		{Kind: Hello, From: 2, TS: 0xdeadbeef},
	} {
		line := AppendMessage(nil, m)
		if len(line) > MaxLine {
			t.Errorf("%v encodes to %d bytes, more than MaxLine %d", m, len(line), MaxLine)
		}
		got, err := ParseMessage(line)
		if err != nil {
			t.Errorf("ParseMessage(%q): %v", line, err)
			continue
		}
		m.To = -1
		if got != m {
			t.Errorf("ParseMessage(%q) = %+v, want %+v", line, got, m)
		}
	}
}

func TestParseMessageRejects(t *testing.T) {
	for _, line := range []string{
		"",
		"\n",
		"REQUEST 3 17",                     // no newline
		"REQUEST 3 17\r\n",                 // carriage return
		"REQUEST 3\n",                      // two fields
		"REQUEST 3 17 4\n",                 // four fields
		"REQUEST  3 17\n",                  // double space
		" REQUEST 3 17\n",                  // leading space
		"request 3 17\n",                   // lower case
		"REQUESTS 3 17\n",                  // unknown kind
		"REQUEST -3 17\n",                  // sign
		"REQUEST +3 17\n",                  // sign
		"REQUEST 03 17\n",                  // leading zero
		"REQUEST 3 017\n",                  // leading zero
		"REQUEST 65 17\n",                  // id beyond MaxIDs-1
		"REQUEST 3 x\n",                    // not a number
		"REQUEST 3 1e3\n",                  // not decimal
		"REQUEST 3 18446744073709551616\n", // overflow
		"REQUEST 3 17\nREPLY 3 18\n",       // two lines
		"REQ\x00EST 3 17\n",
		"GARBAGE GARBAGE GARBAGE GARBAGE GARBAGE GARBAGE\n", // too long
	} {
		m, err := ParseMessage([]byte(line))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseMessage(%q) = %+v, %v; want ErrMalformed", line, m, err)
		}
	}
}

// FuzzParseMessage checks that whatever ParseMessage accepts encodes back to
// the same bytes: one wire form per message, so nothing odd slips through.
func FuzzParseMessage(f *testing.F) {
	f.Add([]byte("REQUEST 3 17\n"))
	f.Add([]byte("TOKEN 0 0\n"))
	f.Add([]byte("REPLY 64 18446744073709551615\n"))
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := ParseMessage(line)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if back := AppendMessage(nil, m); !bytes.Equal(back, line) {
			t.Fatalf("ParseMessage(%q) = %+v, which encodes as %q", line, m, back)
		}
	})
}
