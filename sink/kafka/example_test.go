package kafka_test

import (
	"fmt"

	"github.com/walrelay/walrelay/message"
	"github.com/walrelay/walrelay/sink/kafka"
)

func ExampleKey() {
	m := message.Message{
		Record: map[string]any{"tenant": "acme", "id": int64(42), "name": "x"},
		Action: message.ActionUpdate,
	}
	m.Metadata.SetPrimaryKey("tenant", "id")
	fmt.Printf("%s\n", kafka.Key(m))
	// Output: acme:42
}
