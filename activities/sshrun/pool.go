package sshrun

import (
	"context"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// pooledConn is one target's connection: dialled once (ready closes when the dial ended, with
// client or err set), marked dead when it breaks so the next caller re-dials.
type pooledConn struct {
	once   sync.Once
	ready  chan struct{}
	client *ssh.Client
	err    error
	dead   chan struct{}
}

// Dials reports how many SSH connections the runner has opened.
func (r *Runner) Dials() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dials
}

// Close closes every pooled connection.
func (r *Runner) Close() {
	r.mu.Lock()
	conns := r.conns
	r.conns = map[string]*pooledConn{}
	r.mu.Unlock()
	for _, c := range conns {
		select {
		case <-c.ready:
			if c.client != nil {
				c.client.Close()
			}
		default:
		}
	}
}

// client returns a live pooled client, dialling at most once concurrently per target.
func (r *Runner) client(ctx context.Context, t Target) (*ssh.Client, error) {
	key := t.poolKey()
	r.mu.Lock()
	pc, ok := r.conns[key]
	if ok {
		select {
		case <-pc.dead:
			delete(r.conns, key)
			ok = false
		default:
		}
	}
	if !ok {
		pc = &pooledConn{ready: make(chan struct{}), dead: make(chan struct{})}
		r.conns[key] = pc
		r.dials++
		go func() {
			pc.client, pc.err = r.dial(t)
			if pc.err != nil {
				close(pc.dead)
			} else {
				go r.watch(t, pc)
			}
			close(pc.ready)
		}()
	}
	r.mu.Unlock()
	select {
	case <-pc.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if pc.err != nil {
		r.drop(key, pc)
		return nil, pc.err
	}
	return pc.client, nil
}

// watch notices a dead connection (closed by the peer or silent to keepalives) and marks it.
func (r *Runner) watch(t Target, pc *pooledConn) {
	waitDone := make(chan struct{})
	go func() { pc.client.Wait(); close(waitDone) }()
	tick := time.NewTicker(r.opts.KeepAliveInterval)
	defer tick.Stop()
	for {
		select {
		case <-waitDone:
			pc.once.Do(func() { close(pc.dead) })
			return
		case <-tick.C:
			res := make(chan error, 1)
			go func() { _, _, err := pc.client.SendRequest("keepalive@openssh.com", true, nil); res <- err }()
			select {
			case err := <-res:
				if err == nil {
					continue
				}
			case <-time.After(r.opts.DialTimeout):
			}
			r.log.Warn("ssh connection lost; will re-dial", "target", t.Addr())
			pc.client.Close()
		}
	}
}

func (r *Runner) drop(key string, pc *pooledConn) {
	r.mu.Lock()
	if r.conns[key] == pc {
		delete(r.conns, key)
	}
	r.mu.Unlock()
}

func (r *Runner) dropClient(t Target, c *ssh.Client) {
	key := t.poolKey()
	r.mu.Lock()
	if pc := r.conns[key]; pc != nil && pc.client == c {
		delete(r.conns, key)
	}
	r.mu.Unlock()
}
