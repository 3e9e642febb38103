// Deterministic pseudo-random numbers for the seeder: the same seed gives the same installation, byte for byte.

export class Prng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  /** mulberry32: uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.next() * list.length)];
  }
  /** Uppercase UUID-shaped id, as BlueMind's entity uids. */
  uuid(): string {
    const hex = Array.from({ length: 32 }, () => Math.floor(this.next() * 16).toString(16)).join('').toUpperCase();
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-A${hex.slice(17, 20)}-${hex.slice(20)}`;
  }
  hex(n: number): string {
    return Array.from({ length: n }, () => Math.floor(this.next() * 16).toString(16)).join('');
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 4) {
      const v = (this.next() * 4294967296) >>> 0;
      b[i] = v & 255;
      if (i + 1 < n) b[i + 1] = (v >>> 8) & 255;
      if (i + 2 < n) b[i + 2] = (v >>> 16) & 255;
      if (i + 3 < n) b[i + 3] = v >>> 24;
    }
    return b;
  }
  /** A sentence of `words` words from the word list. */
  sentence(words: number): string {
    const w = Array.from({ length: words }, () => this.pick(WORDS));
    const s = w.join(' ');
    return s.charAt(0).toUpperCase() + s.slice(1) + '.';
  }
  paragraph(sentences: number): string {
    return Array.from({ length: sentences }, () => this.sentence(this.int(6, 14))).join(' ');
  }
}

export const FIRST_NAMES = [
  'Alice', 'Bruno', 'Chloé', 'David', 'Emma', 'François', 'Gabriel', 'Hélène', 'Isabelle', 'Jules', 'Karim', 'Léa',
  'Manon', 'Nicolas', 'Olivier', 'Pauline', 'Quentin', 'Raphaël', 'Sophie', 'Thomas', 'Ulysse', 'Valérie', 'William',
  'Xavier', 'Yasmine', 'Zoé', 'Antoine', 'Camille', 'Damien', 'Elodie', 'Fanny', 'Guillaume', 'Hugo', 'Inès', 'Julie',
  'Louis', 'Marie', 'Nathan', 'Océane', 'Pierre', 'Romain', 'Sarah', 'Théo', 'Victor', 'Agnès', 'Benoît', 'Céline',
];
export const LAST_NAMES = [
  'Martin', 'Bernard', 'Dubois', 'Thomas', 'Robert', 'Richard', 'Petit', 'Durand', 'Leroy', 'Moreau', 'Simon',
  'Laurent', 'Lefebvre', 'Michel', 'Garcia', 'David', 'Bertrand', 'Roux', 'Vincent', 'Fournier', 'Morel', 'Girard',
  'André', 'Lefèvre', 'Mercier', 'Dupont', 'Lambert', 'Bonnet', 'François', 'Martinez', 'Legrand', 'Garnier', 'Faure',
  'Rousseau', 'Blanc', 'Guerin', 'Muller', 'Henry', 'Roussel', 'Nicolas', 'Perrin', 'Morin', 'Mathieu', 'Clement',
];
export const CITIES = ['Toulouse', 'Paris', 'Lyon', 'Nantes', 'Bordeaux', 'Lille', 'Marseille', 'Rennes', 'Grenoble', 'Nice'];
export const COMPANIES = ['Blue Mind SAS', 'Initech', 'Umbrella', 'Stark Industries', 'Wayne Enterprises', 'Hooli', 'Vandelay'];
export const WORDS = (
  'backup restore generation server mailbox calendar meeting review budget planning quarter roadmap release customer ' +
  'contract invoice project deadline team workshop agenda minutes migration database cluster network security audit ' +
  'training onboarding holiday travel report summary draft proposal feedback support ticket incident upgrade version ' +
  'schedule lunch conference partner sales marketing design prototype testing deployment monitoring storage archive'
).split(' ');
