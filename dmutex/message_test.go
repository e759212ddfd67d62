package dmutex

import (
	"bytes"
	"errors"
	"strings"
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
		{Kind: Locked, From: 4, TS: 9},
		{Kind: Failed, From: 4, TS: 9},
		{Kind: Inquire, From: 4, TS: 9},
		{Kind: Relinquish, From: 63, TS: 18446744073709551615},
		{Kind: Token, From: 2, TS: 7, Carried: &TokenState{LN: []uint64{3, 0, 1}}},
		{Kind: Token, From: 2, TS: 7, Carried: &TokenState{LN: []uint64{3, 0, 1}, Queue: []int{1, 0}}},
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
		if !got.Equal(m) {
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
		"REQUEST 3 17                           \n",         // padded past the plain length
		"REQUEST 3 17 1,2 -\n",                              // a payload on a kind that has none
		"TOKEN 3 17 1,2\n",                                  // four fields
		"TOKEN 3 17 1,2 - x\n",                              // six fields
		"TOKEN 3 17 1,2 \n",                                 // empty queue field
		"TOKEN 3 17  -\n",                                   // empty sequence numbers
		"TOKEN 3 17 1,,2 -\n",                               // empty sequence number
		"TOKEN 3 17 1,2, -\n",                               // trailing comma
		"TOKEN 3 17 01,2 -\n",                               // leading zero
		"TOKEN 3 17 1,-2 -\n",                               // sign
		"TOKEN 3 17 1,2 2\n",                                // queue id beyond the sequence numbers
		"TOKEN 3 17 1,2,3 1,1\n",                            // an id twice in the queue
		"TOKEN 3 17 1,2,3 1,\n",                             // trailing comma in the queue
		"TOKEN 3 17 1,2,3 --\n",                             // not "-"
		"TOKEN 3 17 1,2,3 -,1\n",                            // "-" with ids
		"TOKEN 3 17 " + strings.Repeat("1,", 64) + "1 -\n",  // 65 sequence numbers
		"TOKEN 3 17 1,18446744073709551616 -\n",             // overflow
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
	f.Add([]byte("TOKEN 1 5 0,3,2 2,0\n"))
	f.Add([]byte("TOKEN 1 5 0,3,2 -\n"))
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

// TestMaxLine: the longest message there can be, Suzuki-Kasami's token with
// MaxProcs largest sequence numbers and a full queue, fits in MaxLine.
func TestMaxLine(t *testing.T) {
	tok := &TokenState{}
	for i := range MaxProcs {
		tok.LN = append(tok.LN, 18446744073709551615)
		if i > 0 {
			tok.Queue = append(tok.Queue, i)
		}
	}
	line := AppendMessage(nil, Message{Kind: Token, From: MaxProcs - 1, TS: 18446744073709551615, Carried: tok})
	if len(line) > MaxLine {
		t.Fatalf("the longest token is %d bytes, MaxLine %d", len(line), MaxLine)
	}
	if _, err := ParseMessage(line); err != nil {
		t.Fatalf("the longest token does not parse: %v", err)
	}
	tooLong := append(bytes.TrimSuffix(line, []byte("\n")), []byte(strings.Repeat("0", MaxLine-len(line)+1)+"\n")...)
	if _, err := ParseMessage(tooLong); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a %d-byte line parsed: %v", len(tooLong), err)
	}
}
