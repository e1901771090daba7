package sink_test

import (
	"context"
	"fmt"

	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink"
)

func exampleMessages() []message.Message {
	msgs := []message.Message{
		{Action: message.ActionInsert, Record: map[string]any{"id": int64(1), "email": "ann@example.com"},
			Metadata: message.Metadata{TableSchema: "public", TableName: "users"}},
		{Action: message.ActionRead, Record: map[string]any{"id": int64(2), "email": "bob@example.com"},
			Metadata: message.Metadata{TableSchema: "public", TableName: "users"}},
		{Action: message.ActionInsert, Record: map[string]any{"id": int64(9), "total": int64(40)},
			Metadata: message.Metadata{TableSchema: "public", TableName: "orders"}},
	}
	msgs[0].Metadata.SetColumns("id", "email")
	msgs[1].Metadata.SetColumns("id", "email")
	msgs[2].Metadata.SetColumns("id", "total")
	return msgs
}

// printer is a destination that prints the record of each message.
var printer = sink.Func(func(ctx context.Context, msgs ...message.Message) error {
	for _, m := range msgs {
		b, err := sink.RecordOnly(m)
		if err != nil {
			return err
		}
		fmt.Printf("%s %s.%s %s\n", m.Action, m.Metadata.TableSchema, m.Metadata.TableName, b)
	}
	return nil
})

func ExampleFilter() {
	s := sink.Filter(printer, sink.All(sink.Tables("users"), sink.Not(sink.Actions(message.ActionRead))))
	if err := s.Write(context.Background(), exampleMessages()...); err != nil {
		fmt.Println(err)
	}
	// Output:
	// insert public.users {"id":1,"email":"ann@example.com"}
}

func ExampleMap() {
	s := sink.Map(printer, sink.Chain(
		sink.MaskColumns("email"),
		sink.RenameColumns(map[string]string{"total": "amount"}),
	))
	if err := s.Write(context.Background(), exampleMessages()...); err != nil {
		fmt.Println(err)
	}
	// Output:
	// insert public.users {"id":1,"email":"********"}
	// read public.users {"id":2,"email":"********"}
	// insert public.orders {"id":9,"amount":40}
}

func ExampleFanout() {
	var a, b int
	count := func(n *int) sink.Sink {
		return sink.Func(func(ctx context.Context, msgs ...message.Message) error {
			*n += len(msgs)
			return nil
		})
	}
	s := sink.Fanout(count(&a), count(&b))
	if err := s.Write(context.Background(), exampleMessages()...); err != nil {
		fmt.Println(err)
	}
	fmt.Println(a, b)
	// Output:
	// 3 3
}
