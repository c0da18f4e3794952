// A bounded FIFO of messages for one actor. An array with a moving head: push and shift are O(1) and
// nothing is allocated per message beyond the message itself. The array is created on first use, so an
// idle actor costs no mailbox storage.

export class Mailbox<T> {
  readonly capacity: number
  #items: (T | undefined)[] | undefined
  #head = 0

  constructor(capacity: number) {
    this.capacity = capacity
  }

  get depth(): number {
    return this.#items === undefined ? 0 : this.#items.length - this.#head
  }

  get full(): boolean {
    return this.depth >= this.capacity
  }

  /** Adds a message; false when the mailbox is full (the message was not taken). */
  offer(item: T): boolean {
    const items = (this.#items ??= [])
    if (items.length - this.#head >= this.capacity) return false
    items.push(item)
    return true
  }

  /** Adds a message even when full (kernel work that must keep its place in line). */
  force(item: T): void {
    ;(this.#items ??= []).push(item)
  }

  shift(): T | undefined {
    const items = this.#items
    if (items === undefined || this.#head >= items.length) return undefined
    const item = items[this.#head]
    items[this.#head++] = undefined
    if (this.#head === items.length) {
      this.#items = undefined
      this.#head = 0
    } else if (this.#head >= 1024 && this.#head * 2 >= items.length) {
      this.#items = items.slice(this.#head)
      this.#head = 0
    }
    return item
  }

  /** Empties the mailbox and returns what was in it, in order. */
  drain(): T[] {
    const items = this.#items === undefined ? [] : (this.#items.slice(this.#head) as T[])
    this.#items = undefined
    this.#head = 0
    return items
  }
}
