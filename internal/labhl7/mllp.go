package labhl7

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hmis-dev/hmis/ent/auditevent"
	"github.com/hmis-dev/hmis/ent/instrumentmessage"
	"github.com/hmis-dev/hmis/internal/audit"
)

// MLLP framing: a message is sent as 0x0B, the message, 0x1C 0x0D.
const (
	startBlock = 0x0B
	endBlock   = 0x1C
	carriage   = 0x0D
)

// ReadTimeout is how long an MLLP connection may stay silent, or take over
// one message, before it is closed: an analyzer reconnects, and a
// connection left open by a dead peer does not hold a goroutine forever.
const ReadTimeout = 5 * time.Minute

// MLLP serves the Minimal Lower Layer Protocol. It has no credentials: a
// message is believed to be the instrument its MSH-3/MSH-4 name, from the
// address that instrument may connect from. It is meant for the lab's own
// network, and off unless an address is configured.
type MLLP struct {
	Service *Service
	Trail   *audit.Trail
	Log     *slog.Logger
	// ReadTimeout overrides ReadTimeout (tests).
	ReadTimeout time.Duration

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// Serve accepts connections on ln until ctx ends, then closes ln, lets
// each connection finish the message it is processing, and returns.
func (m *MLLP) Serve(ctx context.Context, ln net.Listener) error {
	m.mu.Lock()
	m.conns = map[net.Conn]bool{}
	m.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		_ = ln.Close()
		m.mu.Lock()
		defer m.mu.Unlock()
		for c := range m.conns {
			// Wakes a connection waiting for its next message; one in
			// the middle of processing finishes and then sees it.
			_ = c.SetReadDeadline(time.Now())
		}
	})
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			m.wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		m.mu.Lock()
		if ctx.Err() != nil {
			m.mu.Unlock()
			_ = c.Close()
			continue
		}
		m.conns[c] = true
		m.wg.Add(1)
		m.mu.Unlock()
		go func() {
			defer m.wg.Done()
			defer func() {
				m.mu.Lock()
				delete(m.conns, c)
				m.mu.Unlock()
				_ = c.Close()
			}()
			m.serveConn(ctx, c)
		}()
	}
}

func (m *MLLP) serveConn(ctx context.Context, c net.Conn) {
	timeout := m.ReadTimeout
	if timeout == 0 {
		timeout = ReadTimeout
	}
	var peer netip.Addr
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		peer = ap.Addr().Unmap()
	}
	r := bufio.NewReader(c)
	for ctx.Err() == nil {
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		msg, err := readFrame(r)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && !isTimeout(err) && err.Error() != "EOF" {
				m.Log.WarnContext(ctx, "MLLP connection closed", "peer", peer.String(), "err", err)
			}
			return
		}
		out, err := m.Service.Receive(ctx, string(msg), Origin{Transport: instrumentmessage.TransportMLLP, Addr: peer})
		if err != nil {
			// Nothing kept: closing without an ACK makes the analyzer
			// send it again.
			m.Log.ErrorContext(ctx, "HL7 message failed; closing for the instrument to send it again", "peer", peer.String(), "err", err)
			return
		}
		e := audit.Entry{ActorID: "instrument:" + peer.String(), ActorName: "MLLP " + peer.String(), Operation: "hl7v2",
			Kind: auditevent.KindHTTP, ClientAddr: peer.String(), Outcome: auditevent.OutcomeALLOWED}
		if out.InstrumentID != "" {
			e.ActorID = "instrument:" + out.InstrumentID
		}
		record(&e, out)
		if _, err := m.Trail.Append(context.WithoutCancel(ctx), e); err != nil {
			m.Log.ErrorContext(ctx, "audit append failed; closing without an ACK", "err", err)
			return
		}
		_ = c.SetWriteDeadline(time.Now().Add(timeout))
		frame := append([]byte{startBlock}, out.Ack...)
		if _, err := c.Write(append(frame, endBlock, carriage)); err != nil {
			return
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

var errFrame = errors.New("MLLP: not a frame")

// readFrame reads one framed message, refusing one larger than
// MaxMessageBytes. Bytes before the start block are skipped, as line noise.
func readFrame(r *bufio.Reader) ([]byte, error) {
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		if b == startBlock {
			break
		}
	}
	var buf bytes.Buffer
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		switch b {
		case startBlock:
			return nil, errFrame
		case endBlock:
			next, err := r.ReadByte()
			if err != nil {
				return nil, err
			}
			if next != carriage {
				return nil, errFrame
			}
			return buf.Bytes(), nil
		}
		if buf.Len() >= MaxMessageBytes {
			return nil, errors.New("MLLP: message larger than the limit")
		}
		buf.WriteByte(b)
	}
}
