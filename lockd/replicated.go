package lockd

import "strconv"

// Replicated is the seam between the server and a lock table that is not
// this process's alone: the replicated table of a cluster (package
// lockd/cluster implements it over lockd/replica). The server keeps the
// connections (accepting, AUTH, reading and parsing request lines, the
// bounded output, idle and write timeouts) and hands every other request
// to Handle; the backend keeps the sessions, which in a cluster outlive
// their connections.
//
// The local backend (local.go) is not one of these: it applies a request
// under its mutex in microseconds and never waits for the network, and
// its path stays as short as it is. A replicated backend waits for a
// quorum on most requests, so it takes whole requests, one connection's
// at a time and in order, as the connection's reader hands them over.
//
// The contract:
//
//   - Handle answers req for c: it pushes exactly one reply (and the data
//     lines before it) to c before it returns, or has it pushed by
//     another goroutine of the backend before it returns, in the order of
//     everything else pushed to c (events of earlier log entries first).
//     It may block (a commit, a read index), at most for a bound of its
//     own. It returns why the connection must end ("quit", or a reason
//     of the backend's such as "unavailable"), or "" to go on.
//   - Events for c's session are pushed with Conn.Send, never blocking.
//   - Closed is called once c has ended (after its last Handle): the
//     backend detaches it from its session, which lives on in a cluster.
//   - Shutdown is called when the server stops, before it says BYE to the
//     connections: the backend stops waiting for anything (its pending
//     Handles answer at once) and changes nothing in the table: the
//     sessions and their locks belong to the cluster.
//
// Every method is safe for concurrent use.
type Replicated interface {
	Handle(c *Conn, req Request) (end string)
	Closed(c *Conn)
	Shutdown()
	// Stats are the table's running totals, as this node's replica has
	// them.
	Stats() TableStats
	// Tokens names the rule of the fencing tokens (HELLO's tokens=) and a
	// value every token from now on is above.
	Tokens() (kind string, above Token)
	// Status is one page of the table (Server.Status), from this node's
	// replica as it is.
	Status(q StatusQuery) Status
}

// Conn is one client connection as a Replicated backend sees it. Its
// methods are safe for concurrent use.
type Conn struct{ ss *session }

// ID names the connection for as long as the server runs (it is not a
// session id: in a cluster a session outlives its connections).
func (c *Conn) ID() uint64 { return uint64(c.ss.id) }

// Authenticated reports whether the server has a secret (Config.Secret)
// and the connection has presented it with AUTH. Without a secret every
// connection may do what the protocol allows; a backend refuses what it
// lets no anonymous client do (a cluster's MEMBER ADD and REMOVE).
// Called from Handle only (the connection's reader sets it).
func (c *Conn) Authenticated() bool { return c.ss.srv.cfg.Secret != "" && c.ss.authed }

// Member reports whether the connection may change the membership: it
// presented Config.PeerSecret with AUTH, or the server has no PeerSecret
// and the connection is Authenticated. Called from Handle only.
func (c *Conn) Member() bool {
	if c.ss.srv.cfg.PeerSecret != "" {
		return c.ss.authed && c.ss.member
	}
	return c.Authenticated()
}

// RemoteAddr is the client's address.
func (c *Conn) RemoteAddr() string { return c.ss.conn.RemoteAddr().String() }

// Push queues a reply line (or several) for the connection's reader to
// write at the end of its batch of requests: for Handle's own replies. It
// reports false when the connection's output is closed.
func (c *Conn) Push(b []byte) bool { return c.ss.out.push(b) }

// Send queues lines and gets them on their way without waiting: for
// events, from any goroutine. What a client does not read delays no one
// but itself (its output is bounded; past the bound it is closed).
func (c *Conn) Send(b []byte) { c.ss.out.send(b) }

// Drop ends the connection from any goroutine: "* BYE reason=R" is sent,
// and the connection is closed once it is written (within the write
// timeout). Its reader ends, and Closed follows.
func (c *Conn) Drop(reason string) { c.ss.drop(reason) }

// AppendHello begins HELLO's reply line with the server's own fields
// (session=ID idle=D ttl=D max-locks=N max-line=N auth=B tokens=K
// tokens-above=T server=mplock/V); the backend appends its own and ends
// the line.
func (c *Conn) AppendHello(b []byte, session SessionID, tokens string, above Token) []byte {
	return c.ss.srv.appendHello(b, session, tokens, above)
}

// appendHello writes HELLO's reply up to its server= field.
func (s *Server) appendHello(b []byte, session SessionID, kind string, above Token) []byte {
	b = appendKU(appendOK(b, "HELLO"), "session", uint64(session))
	b = appendKD(b, "idle", max(s.cfg.IdleTimeout, 0))
	b = appendKD(b, "ttl", s.cfg.DefaultTTL)
	b = appendKU(b, "max-locks", uint64(s.cfg.MaxLocksPerSession))
	b = appendKU(b, "max-line", uint64(s.cfg.MaxLine))
	b = appendKV(b, "auth", strconv.FormatBool(s.cfg.Secret != ""))
	b = appendKV(b, "tokens", kind)
	b = appendKU(b, "tokens-above", uint64(above))
	return appendKV(b, "server", "mplock/"+versionWord(s.cfg.Version))
}

// drop sends BYE and closes the connection once that is written; the
// reader then ends (reason "dropped").
func (ss *session) drop(reason string) {
	if !ss.dropped.CompareAndSwap(false, true) {
		return
	}
	ss.out.send(appendBye(nil, reason))
	go func() {
		ss.flush() // bounded by the write timeout
		ss.conn.Close()
	}()
}
