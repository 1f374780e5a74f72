package bolt

import (
	"bytes"
	"context"

	bbolt "go.etcd.io/bbolt"
)

// walkChunk is how many entries one read transaction of walk copies out.
const walkChunk = 1024

// walk calls fn for every entry of bucket in key order. It copies entries
// out a chunk at a time and calls fn outside any transaction, so fn may use
// the Store, and a long walk neither pins old pages nor holds up the
// file's growth. Entries written during the walk may or may not be seen.
func (s *Store) walk(ctx context.Context, bucket []byte, fn func(k, v []byte) error) error {
	var after []byte
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var chunk []pair
		err := s.db.View(func(btx *bbolt.Tx) error {
			chunk, _ = readChunk(btx.Bucket(bucket).Cursor(), after, walkChunk)
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range chunk {
			if err := fn(e.k, e.v); err != nil {
				return err
			}
		}
		if len(chunk) < walkChunk {
			return nil
		}
		after = chunk[len(chunk)-1].k
	}
}

// pair is a key and its value, copied out of a transaction.
type pair struct{ k, v []byte }

// readChunk copies up to n entries from c, from the first key after
// after (from the first key when after is nil), and says whether it
// reached the end.
func readChunk(c *bbolt.Cursor, after []byte, n int) (chunk []pair, end bool) {
	k, v := c.First()
	if after != nil {
		k, v = c.Seek(after)
		if bytes.Equal(k, after) {
			k, v = c.Next()
		}
	}
	for ; k != nil && len(chunk) < n; k, v = c.Next() {
		chunk = append(chunk, pair{bytes.Clone(k), bytes.Clone(v)})
	}
	return chunk, k == nil
}
