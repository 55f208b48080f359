// A number for each object, for cache keys built from objects' identities (buffers, pipelines,
// planned copies): a new object never gets an old one's number, and a WeakMap lets them go.

export class Ids {
  private readonly ids = new WeakMap<object, number>();
  private next = 0;

  of(o: object): number {
    let i = this.ids.get(o);
    if (i === undefined) this.ids.set(o, (i = this.next++));
    return i;
  }
}
