// Names, places and words the seeder draws from, and the sentences it makes of them.

import type { Prng } from '../../demo/prng.js';

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
const WORDS = (
  'backup restore generation server mailbox calendar meeting review budget planning quarter roadmap release customer ' +
  'contract invoice project deadline team workshop agenda minutes migration database cluster network security audit ' +
  'training onboarding holiday travel report summary draft proposal feedback support ticket incident upgrade version ' +
  'schedule lunch conference partner sales marketing design prototype testing deployment monitoring storage archive'
).split(' ');

/** A sentence of `words` words from the word list. */
export function sentence(rng: Prng, words: number): string {
  const w = Array.from({ length: words }, () => rng.pick(WORDS));
  const s = w.join(' ');
  return s.charAt(0).toUpperCase() + s.slice(1) + '.';
}

export function paragraph(rng: Prng, sentences: number): string {
  return Array.from({ length: sentences }, () => sentence(rng, rng.int(6, 14))).join(' ');
}
