package sshrun

import (
	"fmt"
	"sync"
)

// capBuffer keeps the first and last halves of a stream up to a limit, so both the beginning of
// an output (what a parser wants) and its end (where errors are) survive a huge output.
type capBuffer struct {
	mu   sync.Mutex
	max  int
	head []byte
	ring []byte // last max/2 bytes once head is full
	cut  int64  // bytes dropped in the middle
}

func newCapBuffer(max int) *capBuffer { return &capBuffer{max: max} }

func (c *capBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(p)
	half := c.max / 2
	if room := half - len(c.head); room > 0 {
		k := min(room, len(p))
		c.head = append(c.head, p[:k]...)
		p = p[k:]
	}
	if len(p) == 0 {
		return n, nil
	}
	c.ring = append(c.ring, p...)
	if over := len(c.ring) - (c.max - half); over > 0 {
		c.cut += int64(over)
		c.ring = append(c.ring[:0], c.ring[over:]...)
	}
	return n, nil
}

func (c *capBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut == 0 {
		return string(c.head) + string(c.ring)
	}
	return string(c.head) + fmt.Sprintf("\n... [%d bytes cut] ...\n", c.cut) + string(c.ring)
}
