package samlocal

import (
	"io"
	"net"
	"sync"
)

// Forwarder relays TCP connections from one address to another: a server
// on loopback (moto, the thread API) made reachable from the containers at
// the Docker bridge's address, without making it listen anywhere else.
type Forwarder struct {
	l      net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

// Forward listens on listen (host:port; port 0 picks a free one) and
// relays each connection to target until Close.
func Forward(listen, target string) (*Forwarder, error) {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	f := &Forwarder{l: l, target: target, conns: map[net.Conn]bool{}}
	f.wg.Go(f.serve)
	return f, nil
}

// Addr is the address it listens on.
func (f *Forwarder) Addr() string { return f.l.Addr().String() }

func (f *Forwarder) serve() {
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		f.wg.Go(func() { f.relay(c) })
	}
}

func (f *Forwarder) relay(c net.Conn) {
	t, err := net.Dial("tcp", f.target)
	if err != nil {
		c.Close()
		return
	}
	if !f.track(c, t) {
		return
	}
	defer f.untrack(c, t)
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Half-close, so a request's end reaches the server and a
		// response's end the client.
		if tcp, ok := dst.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
	}
	wg.Go(func() { pipe(t, c) })
	wg.Go(func() { pipe(c, t) })
	wg.Wait()
}

func (f *Forwarder) track(cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		f.conns[c] = true
	}
	return true
}

func (f *Forwarder) untrack(cs ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(f.conns, c)
	}
}

// Close stops listening, ends the connections in progress and waits for
// them.
func (f *Forwarder) Close() {
	f.l.Close()
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
