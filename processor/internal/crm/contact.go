package crm

import "context"

// Contact is the canonical contact the identity step (processor/internal/identity) resolved
// for the event an adapter is writing.
type Contact struct {
	// Key is the canonical contact key: the event's ExternalID carries it too.
	Key string
	// Known: the pipeline wrote this contact before, so the write updates a record; adapters
	// then never send placeholders for fields the event leaves out (they would blank real
	// values).
	Known bool
}

type contactKey struct{}

// WithContact returns a context carrying c for the adapter.
func WithContact(ctx context.Context, c Contact) context.Context {
	return context.WithValue(ctx, contactKey{}, c)
}

// ContactOf returns the resolved contact in ctx, if the identity step ran.
func ContactOf(ctx context.Context) (Contact, bool) {
	c, ok := ctx.Value(contactKey{}).(Contact)
	return c, ok
}
